#!/usr/bin/env python3
"""bench/cluster.sh's JSON lines (stdin) as a Markdown table: one row per setting."""
import json
import sys

rows = {}
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    rows.setdefault(r["setting"], {})[r["scenario"]] = r

def ms(us):
    return f"{us / 1000:.2f}"

print("| setting | latency p50 / p99 ms (200 msg/s, room of 100) | max deliveries/s, room of 100 (p99 ms) "
      "| max deliveries/s, rooms of 10 (p99 ms) | CPU at 99k deliveries/s, cores (natter nodes + NATS) |")
print("|---|---|---|---|---|")
for setting, s in rows.items():
    lat = s.get("latency", {}).get("report", {}).get("latency", {})
    def best(name):
        b = (s.get(name, {}).get("report") or {}).get("sustained")
        return f"{b['deliveries_per_sec'] / 1e3:,.0f}k ({ms(b['latency']['p99_us'])})" if b else "—"
    cpu = s.get("cpu", {}).get("cpu", {})
    nodes = sum(v for k, v in cpu.items() if k.startswith("node"))
    nats = sum(v for k, v in cpu.items() if k.startswith("nats"))
    lost = s.get("cpu", {}).get("report", {}).get("lost")
    print(f"| {setting} | {ms(lat.get('p50_us', 0))} / {ms(lat.get('p99_us', 0))} | {best('max100')} "
          f"| {best('max10')} | {nodes:.2f} + {nats:.2f} (lost {lost}) |")
