#!/usr/bin/python3
"""Holds N idle keep-alive HTTP connections to 127.0.0.1:PORT, for bench/run idle.

Opens the connections a batch at a time, sends one GET on each and reads its answer, then
prints one JSON line {"requested", "answered", "open", "failed"} and keeps them idle for
--hold seconds (the harness samples the server's RSS meanwhile); then prints a last line
{"alive": n}, the connections the server had not closed, and exits."""
import argparse
import asyncio
import json
import resource
import sys


async def one(port, request, conns, stats, sem):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        except (OSError, asyncio.TimeoutError):
            stats["failed"] += 1
            return
        try:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await asyncio.wait_for(reader.readexactly(length), 30)
            stats["answered"] += 1
            conns.append((reader, writer))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError):
            stats["failed"] += 1
            writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/mongo")
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=200, help="connections being opened at once")
    ap.add_argument("--hold", type=float, default=8.0, help="seconds to hold them after the report line")
    a = ap.parse_args()
    a.connections = min(max(a.connections, 1), 15000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = f"GET {a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".encode()
    conns, stats = [], {"answered": 0, "failed": 0}
    sem = asyncio.Semaphore(a.batch)
    await asyncio.gather(*(one(a.port, request, conns, stats, sem) for _ in range(a.connections)))
    await asyncio.sleep(0.5)
    open_now = sum(1 for r, _ in conns if not (r.at_eof() or r.exception()))
    print(json.dumps({"requested": a.connections, "answered": stats["answered"], "open": open_now,
                      "failed": stats["failed"]}), flush=True)
    await asyncio.sleep(a.hold)
    # The transport keeps reading: a connection the server closed shows EOF or an error.
    alive = sum(1 for r, _ in conns if not (r.at_eof() or r.exception()))
    print(json.dumps({"alive": alive}), flush=True)
    for _, writer in conns:
        writer.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
