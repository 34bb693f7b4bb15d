#!/bin/bash
# Issue 13's benchmark: `natter bench files` against a fresh server for each run — a 1 GiB file up and down
# beside a raw loopback pipe, the server's memory, chat p99 (200 msg/s into 100 members) alone and beside
# uploads (as fast as they go, then paced), and 100 uploads of 10 MiB at once. JSON lines on stdout.
# Needs about 4 GiB free under /tmp. Usage: bench/files.sh [RUNS] [PACE MiB/s ...]
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
B=${NATTER:-target/release/natter}
RUNS=${1:-3}; shift
PACES=("" "${@:-150}")
for run in $(seq 1 "$RUNS"); do
  for pace in "${PACES[@]}"; do
    rm -rf /tmp/natter-bench-data /tmp/natter-bench-files; mkdir -p /tmp/natter-bench-data
    # No per-user quota: the uploader beside the chat shares the same gigabyte again and again.
    $B serve --data-dir /tmp/natter-bench-data --listen 127.0.0.1:5600 --user-quota 0 --flood-rate 0 \
      > /tmp/natter-bench-serve.log 2>&1 &
    PID=$!
    sleep 1
    $B bench files --server 127.0.0.1:5600 --server-pid $PID --json ${pace:+--transfer-rate $pace} \
      ${pace:+--concurrent 0}
    kill $PID; wait $PID 2>/dev/null
  done
done
rm -rf /tmp/natter-bench-data /tmp/natter-bench-files
