#!/bin/bash
# Chat latency (natter bench latency: 200 msg/s into 100 clients) alone, and while 200 wrong passwords
# arrive from 200 addresses (127.0.x.y) — every one checked with argon2. Issue 12's benchmark.
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."; rm -rf /tmp/benchdata; mkdir -p /tmp/benchdata; ulimit -n 20000
B=${NATTER:-target/release/natter}
NATTER_DATA_DIR=/tmp/benchdata $B serve --listen 127.0.0.1:5600 --db /tmp/benchdata/bench.db --flood-rate 0 --max-per-ip 1000000 --max-clients 20000 > /tmp/serve.log 2>&1 &
PID=$!
sleep 1
python3 - <<'PY'
import socket, json
s = socket.create_connection(("127.0.0.1",5600))
s.sendall(b'{"type":"hello","name":"target","version":1}\n')
f = s.makefile()
for line in f:
    if '"history"' in line and '"room"' not in line: break
s.sendall(json.dumps({"type":"set_password","password":"the real one 123"}).encode()+b"\n")
for line in f:
    if "password_set" in line or "error" in line: print(line.strip()); break
PY
for r in 1 2 3; do
  echo "quiet $r: $($B bench latency --server 127.0.0.1:5600 --server-pid $PID 2>&1 | tail -1)"
  (sleep 3; timeout 60 python3 "$HERE/password-storm.py" 127.0.0.1 5600 200) > /tmp/storm$r.txt 2>&1 &
  SP=$!
  echo "storm $r: $($B bench latency --server 127.0.0.1:5600 --server-pid $PID 2>&1 | tail -1)"
  wait $SP; cat /tmp/storm$r.txt
done
kill $PID
