#!/usr/bin/env bash
# 19,000 connections on one node of a cluster (issue 17): 3 NATS servers (R3) as in deploy/cluster, one
# natter node, `natter bench conns` with 19,000 clients in rooms of 100. Then, holding them for 20 s
# (two NAME_TTLs), whether the node keeps every name (`natter cluster status`: names online) and what
# the renewals cost (CPU of the node and of the NATS servers while idle).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin natter >&2
natter=$PWD/target/release/natter
here=$PWD/deploy/cluster
out=${OUT:-/tmp/natter-bench-cluster-conns}
clients=${CLIENTS:-19000}
rm -rf "$out" && mkdir -p "$out"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
. "$(dirname "$0")/../deploy/cluster/wait-for.sh"
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
ulimit -n 65536 2>/dev/null || ulimit -n 20000
for i in 1 2 3; do
    mkdir -p "$out/nats-$i"
    nats-server -c "$here/nats-$i.conf" -sd "$out/nats-$i" >"$out/nats-$i.log" 2>&1 &
    pids+=($!)
done
for port in 4222 4223 4224; do wait_for $port 30; done
urls=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
NATTER_DATA_DIR="$out/node" "$natter" serve --listen 127.0.0.1:5611 --web none --irc none \
    --flood-rate 0 --max-per-ip 1000000 --max-clients 20000 --cluster "$urls" --cluster-stream conns \
    >"$out/node.log" 2>&1 &
node=$!
pids+=($node)
wait_for 5611 30
status() { "$natter" cluster status --cluster "$urls" --cluster-stream conns; }
online() { status | sed -n 's/^names online: //p'; }
# The generator holds the clients for --settle seconds after the last one registered.
"$natter" bench conns --server 127.0.0.1:5611 --clients "$clients" --procs 2 --server-pid $node \
    --settle 45 >"$out/conns.txt" 2>&1 &
gen=$!
for _ in $(seq 300); do
    [ "$(online)" -ge "$clients" ] 2>/dev/null && break
    sleep 2
done
echo "names online once connected: $(online)"
c0=$(cpu_of $node); n0=0
for p in "${pids[@]:0:3}"; do n0=$(echo "$n0 $(cpu_of "$p")" | awk '{print $1 + $2}'); done
sleep 20
c1=$(cpu_of $node); n1=0
for p in "${pids[@]:0:3}"; do n1=$(echo "$n1 $(cpu_of "$p")" | awk '{print $1 + $2}'); done
echo "idle 20 s (two NAME_TTLs) with $clients held: node $(echo "$c1 $c0" | awk '{printf "%.2f", ($1 - $2) / 20}') cores, 3 NATS servers $(echo "$n1 $n0" | awk '{printf "%.2f", ($1 - $2) / 20}') cores"
echo "names online after: $(online)"
echo "renewal warnings in the node's log: $(grep -c 'cannot renew\|was taken by another node' "$out/node.log" || true)"
wait $gen || true
cat "$out/conns.txt" | tail -1
