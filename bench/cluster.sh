#!/usr/bin/env bash
# natter on 1, 2 and 3 cluster nodes (issue 17), against the single server with SQLite, all on this
# machine's loopback. The NATS side is always 3 servers with JetStream, clustered (R3 stream), as in
# deploy/cluster; the nodes come and go. For each setting, the clients are spread evenly over the nodes
# (`--server A,B,C`; every room has members on every node):
#   latency  one sender at 200 msg/s into a room of 100 (publish-to-delivery p50/p99 across nodes)
#   max100   maxrate, one room of 100, 10 senders (p99 bound 100 ms, nothing lost)
#   max10    maxrate, 100 clients in rooms of 10, 10 senders (one per room)
#   cpu      a fixed 1,000 msg/s into a room of 100 (99,000 deliveries/s): CPU of every process, in cores
# and, on 3 nodes, a perf profile of one node under the fixed load. Output: JSON lines on stdout
# ({"setting", "scenario", "report", "cpu"}), perf reports in $OUT (default /tmp/natter-bench-cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin natter >&2
natter=$PWD/target/release/natter
here=$PWD/deploy/cluster
out=${OUT:-/tmp/natter-bench-cluster}
rm -rf "$out" && mkdir -p "$out"
pids=()

. "$here/wait-for.sh"
stop_all() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap stop_all EXIT
# CPU seconds (user + system) of a process so far.
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

start_nats() {
    for i in 1 2 3; do
        mkdir -p "$out/nats-$i"
        nats-server -c "$here/nats-$i.conf" -sd "$out/nats-$i" >"$out/nats-$i.log" 2>&1 &
        pids+=($!)
        nats_pids+=($!)
    done
    for port in 4222 4223 4224; do wait_for $port 30; done
}
# start_nodes N: N natter nodes on 5601.. (0: one single server without --cluster).
start_nodes() {
    local n=$1 urls=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
    node_pids=()
    servers=""
    local count=$n cluster=(--cluster "$urls" --cluster-stream "bench$n")
    if [ "$n" = 0 ]; then count=1; cluster=(); fi
    for i in $(seq "$count"); do
        rm -rf "$out/node-$n-$i"
        NATTER_DATA_DIR="$out/node-$n-$i" "$natter" serve --listen "127.0.0.1:560$i" --web none \
            --irc none --flood-rate 0 --max-per-ip 1000000 --max-clients 20000 "${cluster[@]}" \
            >"$out/node-$n-$i.log" 2>&1 &
        pids+=($!)
        node_pids+=($!)
        servers+="${servers:+,}127.0.0.1:560$i"
    done
    for i in $(seq "$count"); do wait_for "560$i" 30; done
}
stop_nodes() {
    for p in "${node_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${node_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
# run SETTING SCENARIO ARGS...: one bench run, printed as a JSON line with every process's CPU in cores.
run() {
    local setting=$1 scenario=$2
    shift 2
    local procs=("${node_pids[@]}" "${nats_pids[@]}") before=() after=() t0 t1 report
    for p in "${procs[@]}"; do before+=("$(cpu_of "$p")"); done
    t0=$(date +%s.%N)
    report=$("$natter" bench "$@" --server "$servers" --json | tail -1)
    t1=$(date +%s.%N)
    for p in "${procs[@]}"; do after+=("$(cpu_of "$p")"); done
    local cpu="" i
    for i in "${!procs[@]}"; do
        local name=node$((i + 1))
        [ "$i" -ge "${#node_pids[@]}" ] && name=nats$((i - ${#node_pids[@]} + 1))
        cpu+="${cpu:+,}\"$name\":$(echo "${after[$i]} ${before[$i]} $t1 $t0" | awk '{printf "%.2f", ($1 - $2) / ($3 - $4)}')"
    done
    echo "{\"setting\":\"$setting\",\"scenario\":\"$scenario\",\"report\":$report,\"cpu\":{$cpu}}"
}

nats_pids=()
start_nats
for n in 0 1 2 3; do
    setting=$([ "$n" = 0 ] && echo single || echo "nodes$n")
    start_nodes "$n"
    run "$setting" latency latency --clients 100
    run "$setting" max100 maxrate --clients 100 --senders 10 --rate 100 --duration 2
    run "$setting" max10 maxrate --clients 100 --senders 10 --rate 100 --duration 2 --room-size 10
    if [ "$n" = 3 ]; then
        perf record -g -o "$out/perf-node1.data" -p "${node_pids[0]}" -- sleep 6 >/dev/null 2>&1 &
        perfpid=$!
        run "$setting" cpu fanout --clients 100 --senders 10 --rate 100 --duration 5
        wait $perfpid || true
        perf report -i "$out/perf-node1.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
            | grep -v '^#' | grep -v '^$' | head -60 >"$out/perf-node1.txt" || true
    else
        run "$setting" cpu fanout --clients 100 --senders 10 --rate 100 --duration 5
    fi
    stop_nodes
done
