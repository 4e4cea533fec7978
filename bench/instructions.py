#!/usr/bin/env python3
"""User-space instructions per request of coroserve, counted by valgrind (cachegrind, no cache
simulation), which a busy machine does not disturb.

Runs the server under valgrind twice, sends N1 and then N2 requests over one keep-alive
connection, and reports (Ir(N2) - Ir(N1)) / (N2 - N1): start-up and shutdown cancel out.
The server runs with --io-threads 1 --workers 2 against a fresh mongo-stand-in seeded with
the small or the big document (bench/data), as in the shared benchmark method.

    bench/instructions.py --route /mongo --doc small
    bench/instructions.py --route /json --server build/release/bin/coroserve --n1 500 --n2 1500
    bench/instructions.py --route /mongo --top 25      # also the functions that cost most

Exit status 0; prints one line "route doc instructions/request" (and the top functions).
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(cmd, **kw):
    """Starts `cmd`; returns (process, the port it prints alone on its first stdout line)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **kw)
    line = p.stdout.readline()
    if not line.strip().isdigit():
        p.kill()
        sys.exit(f"{cmd[0]} did not print its port (got {line!r})")
    return p, int(line)


def send_requests(port, route, n):
    """n GETs on one keep-alive connection, each answer read whole before the next request."""
    request = f"GET {route} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        buf = b""
        for _ in range(n):
            s.sendall(request)
            while True:
                head_end = buf.find(b"\r\n\r\n")
                if head_end >= 0:
                    m = re.search(rb"Content-Length: (\d+)", buf[:head_end], re.I)
                    length = int(m.group(1)) if m else 0
                    if len(buf) >= head_end + 4 + length:
                        if not buf.startswith(b"HTTP/1.1 200"):
                            sys.exit(f"{route}: {buf[:400]!r}")
                        buf = buf[head_end + 4 + length:]
                        break
                chunk = s.recv(65536)
                if not chunk:
                    sys.exit(f"{route}: the server closed the connection")
                buf += chunk


def count(args, standin_port, n, out_file):
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out_file}",
           args.server, "--host", "127.0.0.1", "--port", "0", "--io-threads", "1",
           "--workers", "2", "--mongodb-uri", f"mongodb://127.0.0.1:{standin_port}",
           # valgrind runs the server ~50x slower: no deadline may pass while it starts up
           "--server-selection-timeout-ms", "20000", "--db-timeout-ms", "20000"] + args.server_args
    server, port = start(cmd)
    try:
        send_requests(port, args.route, 20)  # warm: the driver's connections, the first buffers
        send_requests(port, args.route, n)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    with open(out_file) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    sys.exit("no summary in the cachegrind output")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--route", default="/mongo")
    p.add_argument("--doc", choices=["small", "big"], default="small")
    p.add_argument("--server", default=os.path.join(ROOT, "build/release/bin/coroserve"))
    p.add_argument("--standin", default=os.path.join(ROOT, "build/release/bin/mongo-standin"))
    p.add_argument("--n1", type=int, default=500)
    p.add_argument("--n2", type=int, default=1500)
    p.add_argument("--top", type=int, default=0, help="print the N functions that cost most (N2 run)")
    p.add_argument("server_args", nargs="*", help="extra coroserve flags (after --)")
    args = p.parse_args()

    doc = os.path.join(ROOT, "bench/data", f"{args.doc}_doc.json")
    standin, standin_port = start([args.standin, "--port", "0", "--seed", f"articles.articles={doc}"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ir1 = count(args, standin_port, args.n1, os.path.join(tmp, "n1.out"))
            ir2 = count(args, standin_port, args.n2, os.path.join(tmp, "n2.out"))
            per = (ir2 - ir1) / (args.n2 - args.n1)
            print(f"{args.route} {args.doc} {per:.0f} instructions/request")
            if args.top:
                out = subprocess.run(["cg_annotate", os.path.join(tmp, "n2.out")], text=True,
                                     capture_output=True).stdout
                print("\n".join(out.splitlines()[:args.top + 25]))
    finally:
        standin.send_signal(signal.SIGTERM)
        standin.wait(timeout=30)


if __name__ == "__main__":
    main()
