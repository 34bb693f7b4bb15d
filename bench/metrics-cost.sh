#!/usr/bin/env bash
# What counting for /metrics costs (issue 16): the same release server with metrics on (`--metrics web`,
# the default) and off (`--metrics off`, nothing counted), runs alternating, each against a fresh server:
# server CPU at a fixed 2 M deliveries/s (100 clients, 10 senders x 2,000 msg/s), and the max sustained
# fan-out (maxrate, C=100, 10 senders). Prints one line per run; REPEATS (default 5) runs per setting.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin natter
natter=target/release/natter
repeats=${REPEATS:-5}
port=5710
run() {
    local metrics=$1 what=$2
    rm -f /tmp/natter-metrics-cost.db*
    "$natter" serve --listen 127.0.0.1:$port --web none --irc none --db /tmp/natter-metrics-cost.db \
        --flood-rate 0 --max-per-ip 1000000 --max-clients 20000 --metrics "$metrics" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.1
    done
    case $what in
        cpu) echo "metrics $metrics cpu: $("$natter" bench fanout --server 127.0.0.1:$port --clients 100 --senders 10 --rate 2000 --duration 5 --server-pid $pid | tail -1)" ;;
        max) echo "metrics $metrics max: $("$natter" bench maxrate --server 127.0.0.1:$port --clients 100 --senders 10 --rate 500 --duration 2 | tail -1)" ;;
    esac
    kill $pid
    wait $pid 2>/dev/null || true
}
for _ in $(seq "$repeats"); do
    run web cpu
    run off cpu
done
for _ in $(seq "$repeats"); do
    run web max
    run off max
done
