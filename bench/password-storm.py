#!/usr/bin/env python3
"""200 wrong-password sign-ins at once, each from its own loopback address (password-storm.sh)."""
import socket, json, sys, threading, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def guess(i):
    s = socket.socket()
    s.bind((f"127.0.{1 + i // 250}.{1 + i % 250}", 0))
    s.connect((host, port))
    s.sendall((json.dumps({"type":"hello","name":"target","version":1,"password":f"wrong guess {i}"})+"\n").encode())
    s.settimeout(30)
    data = s.recv(4096)
    s.close()
    return b"bad_password" in data
ok = [0]
def run(i):
    if guess(i): ok[0] += 1
t0 = time.time()
threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(f"{ok[0]} of {n} wrong guesses answered bad_password in {time.time()-t0:.2f} s")
