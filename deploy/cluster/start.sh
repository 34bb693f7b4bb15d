#!/usr/bin/env bash
# Starts a whole natter cluster on this machine, on loopback: 3 NATS servers with JetStream, clustered
# (the stream is replicated on all three), and 3 natter nodes on chat ports 5501, 5502 and 5503, each
# with its own data directory. Everything lives in $NATTER_CLUSTER_DIR (default /tmp/natter-cluster):
# the NATS stores, the nodes' data, the logs, and the pids that stop.sh stops — only what this started.
#
#   deploy/cluster/start.sh
#   natter join --server 127.0.0.1:5501,127.0.0.1:5502,127.0.0.1:5503
#   deploy/cluster/stop.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${NATTER_CLUSTER_DIR:-/tmp/natter-cluster}
natter=${NATTER:-$(command -v natter || echo "$here/../../target/release/natter")}
[ -x "$natter" ] || { echo "start.sh: no natter binary (cargo build --release, or NATTER=PATH)" >&2; exit 1; }
command -v nats-server >/dev/null || { echo "start.sh: nats-server is missing (apt install nats-server)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
[ ! -s pids ] || { echo "start.sh: $dir/pids exists: a cluster is running (deploy/cluster/stop.sh)" >&2; exit 1; }

. "$here/wait-for.sh"

for i in 1 2 3; do
    mkdir -p "data/nats-$i"
    nats-server -c "$here/nats-$i.conf" -sd "$dir/data/nats-$i" >"nats-$i.log" 2>&1 &
    echo $! >>pids
done
for port in 4222 4223 4224; do wait_for $port 30; done

urls=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
for i in 1 2 3; do
    NATTER_DATA_DIR="$dir/node-$i" "$natter" serve --listen "127.0.0.1:550$i" --web none --irc none \
        --cluster "$urls" >"node-$i.log" 2>&1 &
    echo $! >>pids
done
for port in 5501 5502 5503; do wait_for $port 30; done
echo "natter cluster up in $dir: natter join --server 127.0.0.1:5501,127.0.0.1:5502,127.0.0.1:5503"
