#!/usr/bin/env bash
# Fuzz the frame decoder, JSON parsing, plain-text translation and the name/text rules.
# Stable toolchain: no sanitizer (-s none). Usage: fuzz/run.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/target/corpus
# New inputs go to fuzz/target/corpus; the committed seeds in fuzz/corpus/frames are only read.
cargo fuzz run frames -s none fuzz/target/corpus fuzz/corpus/frames -- -max_total_time="${1:-60}" -max_len=4096
