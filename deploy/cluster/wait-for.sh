# Sourced by the cluster scripts (deploy/cluster/start.sh, bench/cluster.sh, bench/cluster-conns.sh).
# wait_for PORT [SECONDS]: waits until something accepts connections on 127.0.0.1:PORT (at most SECONDS,
# default 10); says which port on stderr and fails if nothing does.
wait_for() {
    local tries=$(( ${2:-10} * 10 ))
    for _ in $(seq "$tries"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): nothing listens on port $1" >&2
    return 1
}
