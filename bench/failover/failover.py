#!/usr/bin/python3
"""Failover under load (issue 14): coroserve on the stand-in's 3-member replica set, GET /mongo
from C keep-alive connections in a closed loop for S seconds. At S/4 the primary (member 0)
steps down (no primary for --election-ms, then member 1 wins); at S/2 secondary 2 is killed
(its connections closed, new ones refused); at 3S/4 it comes back.

For each read preference it reports: requests, non-2xx answers, transport errors, the longest
window with errors (failed requests' [start, end] intervals merged), p50/p99/max latency, for
each event the time from the event to the end of the first 200 among the requests sent after
it, where the reads landed (the stand-in's per-member find counters), and coroserve's
database errors by kind (/metrics deltas).

Bounded (S seconds per mode plus start-up) and loopback only. Wall-clock figures: valid only
on a quiet machine; the client is Python (asyncio), so at high C it may be the bottleneck,
which shows as low request counts, not as errors.

Usage (from the repository root, after building coroserve and mongo-standin):
  bench/failover/failover.py [--build-dir build/release] [--modes primary,secondaryPreferred]
      [--connections 200] [--seconds 20] [--election-ms 1000] [--heartbeat-ms 500]
      [--server-selection-timeout-ms 1000] [--json FILE] [--check]
--check: exit 1 if primaryPreferred, secondaryPreferred or nearest had any failed request."""
import argparse
import asyncio
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODES = ["primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest"]
REQUEST = b"GET /mongo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

sys.path.insert(0, os.path.join(ROOT, "tests", "standin", "python"))
import standin_proc  # noqa: E402  (the tests' stand-in launcher)


class Standin(standin_proc.Standin):
    """mongo-standin --replset rs0 --members 3 (the tests' launcher), its log to `log`."""

    def __init__(self, exe, election_ms, log):
        data = os.path.join(ROOT, "bench", "data")
        super().__init__("--replset", "rs0", "--members", "3", "--election-ms", str(election_ms),
                         "--seed", f"articles.articles={data}/small_doc.json",
                         exe=exe, stderr=log)

    def finds(self):
        return self.replset()["finds"]


def start_coroserve(exe, uri, selection_ms, log):
    proc = subprocess.Popen(
        [exe, "--host", "127.0.0.1", "--port", "0", "--mongodb-uri", uri,
         "--server-selection-timeout-ms", str(selection_ms)],
        stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        proc.wait()
        raise RuntimeError(f"coroserve printed {line!r} instead of a port")
    # Whatever else it prints must not fill the pipe.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, int(line)


def db_metrics(port):
    """The coroserve_db_* samples of /metrics: {name{labels}: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("coroserve_db_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def exchange(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, close = 0, False
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        key = key.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"connection":
            close = value.strip().lower() == b"close"
    if length:
        await reader.readexactly(length)
    return status, close


async def worker(port, t0, deadline, records):
    """One keep-alive connection in a closed loop; (start, end, status) per request, status
    0 for a transport error (the connection is then opened again)."""
    reader = writer = None
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 5)
            writer.write(REQUEST)
            status, close = await asyncio.wait_for(exchange(reader), 15)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError, ValueError, IndexError):
            status, close = 0, True
        records.append((start - t0, time.monotonic() - t0, status))
        if close and writer is not None:
            writer.close()
            reader = writer = None
        if status == 0:
            await asyncio.sleep(0.01)  # no tight loop against a server that is gone
    if writer is not None:
        writer.close()


async def events(standin, t0, plan, log):
    loop = asyncio.get_running_loop()
    for at, line in plan:
        await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
        sent = time.monotonic() - t0
        answer = await loop.run_in_executor(None, standin.control, line)
        log.append({"at_s": round(sent, 3), "control": line, "answer": answer})


async def load(port, standin, connections, seconds, plan):
    records, log = [], []
    t0 = time.monotonic()
    deadline = t0 + seconds
    await asyncio.gather(events(standin, t0, plan, log),
                         *(worker(port, t0, deadline, records) for _ in range(connections)))
    return records, log


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(q / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


def ok(status):
    return 200 <= status < 300


def analyse(records, log):
    failed = sorted((s, e) for s, e, st in records if not ok(st))
    longest, window = 0.0, None
    for s, e in failed:
        if window and s <= window[1]:
            window[1] = max(window[1], e)
        else:
            window = [s, e]
        longest = max(longest, window[1] - window[0])
    latencies = sorted((e - s) * 1000.0 for s, e, _ in records)
    after_events = []
    for event in log:
        at = event["at_s"]
        firsts = [e for s, e, st in records if s >= at and ok(st)]
        first = min(firsts) if firsts else None
        after_events.append({
            "control": event["control"],
            "at_s": at,
            "first_200_after_ms": None if first is None else round((first - at) * 1000.0, 1),
            "failed_after": sum(1 for s, e, st in records
                                if s >= at and not ok(st) and (first is None or e <= first)),
        })
    return {
        "requests": len(records),
        "non2xx": sum(1 for _, _, st in records if st != 0 and not ok(st)),
        "transport_errors": sum(1 for _, _, st in records if st == 0),
        "statuses": {str(st): n for st, n in
                     sorted(collections.Counter(st for _, _, st in records).items())},
        "longest_error_window_ms": round(longest * 1000.0, 1),
        "p50_ms": round(percentile(latencies, 50) or 0, 2),
        "p99_ms": round(percentile(latencies, 99) or 0, 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "events": after_events,
    }


def run_mode(args, mode, tmp):
    bin_dir = os.path.join(args.build_dir, "bin")
    with open(os.path.join(tmp, f"standin-{mode}.log"), "w") as standin_log, \
            open(os.path.join(tmp, f"coroserve-{mode}.log"), "w") as server_log:
        standin = Standin(os.path.join(bin_dir, "mongo-standin"), args.election_ms, standin_log)
        server = None
        try:
            uri = (f"mongodb://127.0.0.1:{standin.port}/?replicaSet=rs0&readPreference={mode}"
                   f"&heartbeatFrequencyMS={args.heartbeat_ms}")
            server, port = start_coroserve(os.path.join(bin_dir, "coroserve"), uri,
                                           args.server_selection_timeout_ms, server_log)
            # Warm-up: the set discovered and the pool's connections open.
            deadline = time.monotonic() + 15
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/mongo", timeout=10):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{mode}: coroserve never answered 200 on /mongo")
                    time.sleep(0.2)
            metrics_before, finds_before = db_metrics(port), standin.finds()
            s = args.seconds
            plan = [(s * 0.25, "stepdown"), (s * 0.5, "kill 2"), (s * 0.75, "revive 2")]
            records, log = asyncio.run(load(port, standin, args.connections, s, plan))
            metrics_after, finds_after = db_metrics(port), standin.finds()
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            standin.close()
    result = {"mode": mode, **analyse(records, log)}
    result["finds_per_member"] = [a - b for a, b in zip(finds_after, finds_before)]
    result["db_errors"] = {k: v - metrics_before.get(k, 0.0) for k, v in metrics_after.items()
                           if v != metrics_before.get(k, 0.0)}
    result["controls"] = log
    return result


def table(results, args):
    lines = [
        f"c={args.connections}, {args.seconds} s, election {args.election_ms} ms, "
        f"heartbeatFrequencyMS={args.heartbeat_ms}, "
        f"serverSelectionTimeoutMS={args.server_selection_timeout_ms}",
        "",
        "| readPreference | requests | non-2xx | transport errors | longest error window (ms) "
        "| p99 (ms) | max (ms) | first 200 after stepdown / kill / revive (ms) "
        "| finds per member | db errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        firsts = " / ".join("-" if e["first_200_after_ms"] is None else str(e["first_200_after_ms"])
                            for e in r["events"])
        # The failures by kind (coroserve_db_failures_total{kind="..."}); the JSON has all.
        prefix = 'coroserve_db_failures_total{kind="'
        errors = ", ".join(f"{k[len(prefix):-2]} {int(v)}" for k, v in r["db_errors"].items()
                           if k.startswith(prefix)) or "none"
        lines.append(
            f"| {r['mode']} | {r['requests']} | {r['non2xx']} | {r['transport_errors']} "
            f"| {r['longest_error_window_ms']} | {r['p99_ms']} | {r['max_ms']} | {firsts} "
            f"| {','.join(map(str, r['finds_per_member']))} | {errors} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--election-ms", type=int, default=1000)
    ap.add_argument("--heartbeat-ms", type=int, default=500)
    ap.add_argument("--server-selection-timeout-ms", type=int, default=1000)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a mode that may read from a secondary failed a request")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not 1 <= args.connections <= 5000 or not 1 <= args.seconds <= 600:
        ap.error(f"modes must be among {MODES} (got {unknown}), connections 1..5000, "
                 f"seconds 1..600")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = []
    with tempfile.TemporaryDirectory(prefix="failover-") as tmp:
        for mode in modes:
            result = run_mode(args, mode, tmp)
            print(json.dumps(result), flush=True)
            results.append(result)
    print(table(results, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.check:
        bad = [r["mode"] for r in results
               if r["mode"] in ("primaryPreferred", "secondaryPreferred", "nearest")
               and (r["non2xx"] or r["transport_errors"])]
        if bad:
            print(f"failed requests with {', '.join(bad)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
