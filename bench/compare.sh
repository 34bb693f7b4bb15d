#!/usr/bin/env bash
# natter (its own protocol and its IRC port) side by side with ngIRCd, InspIRCd and `ncat --chat`, on
# loopback, flood control off.
# Installs the peers from Debian packages if missing, runs the same scenarios against each with
# `natter bench` — every figure REPEATS times (3), each repeat against a freshly started server — and
# writes bench/results/DATE-compare.md (the table of medians first, then every run), .json (one JSON report
# per line) and .png, stopping every server it started. About 20 minutes on 2 cores.
#
#   bench/compare.sh                          # every server
#   SERVERS="natter" REPEATS=1 bench/compare.sh   # re-run one server; the report keeps the others' runs
set -euo pipefail
cd "$(dirname "$0")/.."
ALL="natter natter-mem natter-irc ngircd inspircd ncat"
SERVERS=${SERVERS:-$ALL}
REPEATS=${REPEATS:-3}
DATE=$(date +%Y-%m-%d)
OUT=bench/results/$DATE-compare
# Each server's runs go to $PARTS/SERVER.{md,json}; the report is assembled from every part at the end.
PARTS=bench/results/parts-$DATE
mkdir -p "$PARTS"

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; }; }
for s in $SERVERS; do
  case $s in
    ngircd) need ngircd ngircd ;;
    inspircd) need inspircd inspircd ;;
    ncat) need ncat ncat ;;
  esac
done
cargo build --release -q
NATTER=target/release/natter
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start() { # name -> sets PORT, PID, DIALECT, BATCH
  case $1 in
    natter)
      rm -f /tmp/natter-bench.db*
      $NATTER serve --listen 127.0.0.1:5700 --web none --irc none --db /tmp/natter-bench.db --flood-rate 0 --max-per-ip 1000000 --max-clients 20000 >/dev/null 2>&1 &
      PID=$!; PORT=5700; DIALECT=native; BATCH=50 ;;
    natter-mem) # history in RAM only: the "history off" reference for natter
      $NATTER serve --listen 127.0.0.1:5701 --web none --irc none --db :memory: --flood-rate 0 --max-per-ip 1000000 --max-clients 20000 >/dev/null 2>&1 &
      PID=$!; PORT=5701; DIALECT=native; BATCH=50 ;;
    natter-irc) # natter's IRC port: the same server through the IRC front end
      rm -f /tmp/natter-bench-irc.db*
      $NATTER serve --listen 127.0.0.1:5702 --web none --irc 127.0.0.1:5703 --db /tmp/natter-bench-irc.db --flood-rate 0 --max-per-ip 1000000 --max-clients 20000 >/dev/null 2>&1 &
      PID=$!; PORT=5703; DIALECT=irc; BATCH=50 ;;
    ngircd) # not 6667: that is natter's default IRC port
      ngircd -n -f bench/peers/ngircd.conf >/dev/null 2>&1 &
      PID=$!; PORT=6670; DIALECT=irc; BATCH=8 ;;
    inspircd)
      inspircd --nofork --runasroot --config="$PWD/bench/peers/inspircd.conf" >/dev/null 2>&1 &
      PID=$!; PORT=6668; DIALECT=irc; BATCH=50 ;;
    ncat)
      ncat -l --chat -m 100000 127.0.0.1 6669 >/dev/null 2>&1 &
      PID=$!; PORT=6669; DIALECT=lines; BATCH=8 ;;
  esac
  PIDS+=("$PID")
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0; sleep 0.1; done
  echo "$1 did not start" >&2; return 1
}

stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

run() { # label, natter bench args...
  local label=$1; shift
  { echo "### $label"; echo '```'; } >> "$PARTS/$S.md"
  if out=$($NATTER bench "$@" --server 127.0.0.1:$PORT --dialect $DIALECT --server-pid $PID 2>&1); then
    echo "$out" | grep -v '^{' >> "$PARTS/$S.md" || true
    echo "$out" | grep '^{' | sed "s|^{|{\"server\":\"$S\",\"scenario\":\"$label\",|" >> "$PARTS/$S.json" || true
  else
    echo "failed: $out" >> "$PARTS/$S.md"
  fi
  echo '```' >> "$PARTS/$S.md"
}

# Ramps start near 2 M deliveries/s and rise x1.4 per step until p99 > 100 ms or anything is lost, then
# narrow down with two bisection steps.
for S in $SERVERS; do
  echo "== $S"
  printf '\n## %s\n' "$S" > "$PARTS/$S.md"
  : > "$PARTS/$S.json"
  for rep in $(seq "$REPEATS"); do
    echo "   run $rep of $REPEATS"
    start "$S"
    run "latency 200 msg/s into 100" latency --duration 5 --connect-batch $BATCH --json
    run "maxrate C=100 S=10" maxrate --clients 100 --senders 10 --rate 2000 --duration 2 --connect-batch $BATCH --json
    if [ "$S" != ncat ]; then # ncat exits near 1,019 clients (select's FD_SETSIZE)
      run "maxrate C=1000 S=5" maxrate --clients 1000 --senders 5 --rate 400 --duration 2 --connect-batch $BATCH --json
    fi
    stop
    if [ "$S" != ncat ]; then # idle connections on a fresh server: freed memory of the runs above would hide the cost
      start "$S"
      run "conns 2000 idle" conns --clients 2000 --batch $BATCH --json
      stop
    fi
    if [ "$S" = natter ]; then # one process, 19,000 clients, from two generator processes (fd limit 20,000 each)
      start natter
      run "conns 19000 idle (natter only)" conns --clients 19000 --procs 2 --batch 50 --json
      stop
    fi
  done
done

: > "$OUT.json"
for S in $ALL; do if [ -f "$PARTS/$S.json" ]; then cat "$PARTS/$S.json" >> "$OUT.json"; fi; done
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need fc-list fonts-dejavu-core
$NATTER bench plot "$OUT.json" "$OUT.png"
{
  echo "# natter bench: side by side, $DATE"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr), loopback. Generated by bench/compare.sh."
  echo "Deliveries = messages x recipients; max sustained = p99 <= 100 ms and nothing lost, duplicated or"
  echo "reordered. Every figure: $REPEATS runs, each against a freshly started server. The generator shares"
  echo "the 2 cores with the server; every JSON report carries both processes' CPU."
  echo
  echo "## Medians"
  echo
  $NATTER bench summary "$OUT.json"
  echo
  echo "![delivered/s and p99 vs offered load]($(basename "$OUT").png)"
  for S in $ALL; do if [ -f "$PARTS/$S.md" ]; then cat "$PARTS/$S.md"; fi; done
} > "$OUT.md"
echo "wrote $OUT.md, $OUT.json and $OUT.png"
