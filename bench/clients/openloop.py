#!/usr/bin/python3
"""Open-loop load for bench/run openloop: sends GET PATH at a fixed rate, whatever the
server's answers, over at most --connections keep-alive connections, and measures each
request's latency from the time it was SCHEDULED to be sent, so waiting for a free
connection (queueing) is counted: no coordinated omission, unlike wrk's closed loop.

Prints one JSON line: offered and achieved rates, latency percentiles (ms), errors,
non2xx, and client_max_lag_ms (how late the client itself sent; when that is large the
client, not the server, was the limit)."""
import argparse
import asyncio
import json
import resource
import sys


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


class Pool:
    """At most `size` connections; a request waits for an idle one when all are busy."""

    def __init__(self, port, size):
        self.port, self.size, self.opened = port, size, 0
        self.idle = asyncio.Queue()

    async def get(self):
        if not self.idle.empty():
            return self.idle.get_nowait()
        if self.opened < self.size:
            return await self.get_new()
        return await self.idle.get()

    async def get_new(self):
        """A new connection: [reader, writer, requests served on it]."""
        self.opened += 1
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 10)
            return [reader, writer, 0]
        except BaseException:
            self.opened -= 1
            raise

    def put(self, conn):
        self.idle.put_nowait(conn)

    def drop(self, conn):
        self.opened -= 1
        conn[1].close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/mongo")
    ap.add_argument("--rate", type=float, required=True, help="requests per second offered")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=10, help="a request older than this is an error")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    total = min(int(a.rate * a.duration), 2_000_000)
    request = f"GET {a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    pool = Pool(a.port, a.connections)
    lat, st = [], {"errors": 0, "timeouts": 0, "non2xx": 0, "lag": 0.0, "last": 0.0}

    async def exchange(conn):
        reader, writer = conn[0], conn[1]
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close = None, lines[0].startswith(b"HTTP/1.0")
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"connection":
                close = v.strip().lower() != b"keep-alive" if close else v.strip().lower() == b"close"
        if length is None:
            await reader.read()  # no length: the body ends with the connection
            close = True
        elif length:
            await reader.readexactly(length)
        return status, close

    async def one(sched):
        conn = None
        try:
            conn = await asyncio.wait_for(pool.get(), a.timeout)
            try:
                status, close = await asyncio.wait_for(exchange(conn), max(a.timeout - (loop.time() - sched), 0.001))
            except (OSError, asyncio.IncompleteReadError) as e:
                # The server closed an idle keep-alive connection without saying so (e.g.
                # uwsgi's --http-socket): retry once on a fresh one, as HTTP clients do. The
                # latency still counts from the scheduled time.
                if not conn[2]:
                    raise
                pool.drop(conn)
                conn = None
                conn = await asyncio.wait_for(pool.get_new(), a.timeout)
                status, close = await asyncio.wait_for(exchange(conn), max(a.timeout - (loop.time() - sched), 0.001))
            conn[2] += 1
            done = loop.time()
            lat.append((done - sched) * 1000.0)
            st["last"] = max(st["last"], done)
            if status > 399:  # what wrk counts as "Non-2xx or 3xx"
                st["non2xx"] += 1
            if close:
                pool.drop(conn)
            else:
                pool.put(conn)
        except asyncio.TimeoutError:
            st["timeouts"] += 1
            if conn:
                pool.drop(conn)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            st["errors"] += 1
            if conn:
                pool.drop(conn)

    t0 = loop.time() + 0.05
    tasks = set()
    for i in range(total):
        sched = t0 + i / a.rate
        delay = sched - loop.time()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        st["lag"] = max(st["lag"], loop.time() - sched)
        t = asyncio.ensure_future(one(sched))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(list(tasks), timeout=a.timeout + 1)
    lat.sort()
    span = (st["last"] - t0) if st["last"] > t0 else a.duration
    print(json.dumps({
        "offered_rps": a.rate, "sent": total, "completed": len(lat),
        "achieved_rps": round(len(lat) / span, 1) if lat else 0.0,
        "latency_ms": {k: (round(percentile(lat, q), 3) if lat else None)
                       for k, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9))} |
                      {"max": round(lat[-1], 3) if lat else None},
        "errors": st["errors"] + st["timeouts"], "timeouts": st["timeouts"], "non2xx": st["non2xx"],
        "connections_used": pool.opened, "client_max_lag_ms": round(st["lag"] * 1000.0, 2),
    }), flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
