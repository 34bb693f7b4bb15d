#!/usr/bin/env bash
# Stops what deploy/cluster/start.sh started (the pids in $NATTER_CLUSTER_DIR/pids): the natter nodes
# first, then the NATS servers. The data stays; `rm -rf $NATTER_CLUSTER_DIR` removes it.
set -euo pipefail
dir=${NATTER_CLUSTER_DIR:-/tmp/natter-cluster}
[ -s "$dir/pids" ] || { echo "stop.sh: nothing started in $dir" >&2; exit 0; }
# Newest first: the nodes, then NATS.
tac "$dir/pids" | while read -r pid; do
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
done
rm -f "$dir/pids"
echo "natter cluster in $dir stopped"
