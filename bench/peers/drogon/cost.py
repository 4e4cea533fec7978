#!/usr/bin/python3
"""What one request costs drogon and coroserve, in measures that survive a busy machine.

Servers (--servers): `drogon` and `coroserve-d13` (this tree's coroserve built in the Debian 13
chroot by the `coroserve-d13` contender: g++ 14, libmongoc 1.30) run inside the chroot, under its
valgrind; `coroserve` (build/release, Debian 12's libmongoc 1.23) on the host.

  cost.py instructions  user-space instructions per request under
                        `valgrind --tool=cachegrind --cache-sim=no`: each server is run twice per
                        repetition, with W and with W+N requests sent one at a time over one
                        keep-alive connection; (Ir(W+N) - Ir(W)) / N removes start-up and shutdown.
                        drogon and coroserve-d13 run inside the Debian 13 chroot (its valgrind),
                        coroserve on the host; all with one I/O thread and one DB thread, libmongoc's monitor
                        asleep (heartbeatFrequencyMS), address randomisation off (setarch -R).
  cost.py syscalls      system calls per request (strace -c attached to every thread of the
                        server, natively, after W requests; N requests on one keep-alive
                        connection): the kernel side that instruction counts do not see.
  cost.py profile       after `instructions --tool callgrind --reps 1`: per function, instructions
                        per request (the W+N run minus the W run, over N), exclusive and
                        inclusive, from callgrind_annotate; --top functions per server and route,
                        and the exclusive instructions per request of each shared object (ours,
                        libmongoc, libbson, libc, ...).
  cost.py threads       drogon --io-threads 1 against 2 on the one server core of the `split`
                        layout (server + stand-in on CPU 0, wrk on CPU 1), alternated: server CPU
                        time and context switches per request under wrk load, from /proc.

They need build/release/bin/{coroserve,mongo-standin}, and build/bench-peers/peer-drogon and
build/bench-peers/coroserve-d13/bin/coroserve for those servers (bench/run builds them; run
`bench/run --contenders drogon,coroserve-d13 --docs small --connections 200 --reps 1` once).
Results: a Markdown table on stdout, raw files under --out.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import procs  # noqa: E402

CHROOT = os.path.join(ROOT, "tools/ci/trixie-chroot.sh")
PEERS = os.path.join(ROOT, "build/bench-peers")
BIN = os.path.join(ROOT, "build/release/bin")
# The binary of each server (coroserve-d13: the contender's build, contenders.COROSERVE_D13_BUILD).
BINARIES = {"drogon": os.path.join(PEERS, "peer-drogon"), "coroserve": os.path.join(BIN, "coroserve"),
            "coroserve-d13": os.path.join(PEERS, "coroserve-d13", "bin", "coroserve")}
IN_CHROOT = {"drogon", "coroserve-d13"}
DOCS = {"small": "bench/data/small_doc.json", "big": "bench/data/big_doc.json"}
# A monitor heartbeat during the run would add a varying number of checks: an hour is longer
# than any run.
URI_OPTIONS = "heartbeatFrequencyMS=3600000"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Fail(Exception):
    pass


def standin(doc, out):
    p = procs.start(f"standin-{doc}", [os.path.join(BIN, "mongo-standin"), "--port", "0", "--bind", "127.0.0.1",
                                       "--seed", f"articles.articles={os.path.join(ROOT, DOCS[doc])}"],
                    out, cpus="0")
    return p, f"mongodb://127.0.0.1:{int(p.first_line(20))}/?{URI_OPTIONS}"


def valgrind(tool, out_file):
    """cachegrind counts instructions; callgrind also attributes them to functions (profiles)."""
    extra = ["--cache-sim=no"] if tool == "cachegrind" else []
    return ["setarch", "-R", "valgrind", f"--tool={tool}"] + extra + [f"--{tool}-out-file={out_file}"]


def drogon_cmd(uri, flags, out, tool=None, out_file=None):
    cmd = [CHROOT, "run", "--bind", PEERS, "--bind", out, "--", "env", f"MONGODB_URI={uri}"]
    if tool:
        cmd += valgrind(tool, out_file)
    return cmd + [BINARIES["drogon"], "--port", "0"] + flags


def coroserve_cmd(uri, tool=None, out_file=None, server="coroserve", out="/tmp"):
    """coroserve on the host, or coroserve-d13 in the chroot (valgrind's output in `out`)."""
    cmd = [CHROOT, "run", "--bind", PEERS, "--bind", out, "--"] if server in IN_CHROOT else []
    if tool:
        cmd += valgrind(tool, out_file)
    return cmd + [BINARIES[server], "--host", "127.0.0.1", "--port", "0", "--io-threads", "1", "--workers", "1",
                  "--drain-timeout-ms", "0", "--mongodb-uri", uri]


def read_response(sock, buf):
    """One HTTP/1.1 response with a Content-Length body: (status, the bytes after it)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise Fail("connection closed before an answer")
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next((int(v) for n, _, v in (x.partition(b":") for x in lines[1:]) if n.strip().lower() == b"content-length"), 0)
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise Fail("connection closed inside a body")
        buf += chunk
    return int(lines[0].split()[1]), buf[length:]


def connect(port, timeout=60.0):
    """drogon prints its port (beginning advice) just before its listener accepts: retry."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def send(port, path, count):
    with connect(port) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data, buf = f"GET {path} HTTP/1.1\r\nHost: cost\r\n\r\n".encode(), b""
        for _ in range(count):
            s.sendall(data)
            status, buf = read_response(s, buf)
            if status != 200:
                raise Fail(f"GET {path}: status {status}")


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise Fail(f"no summary line in {path}")


def send_concurrently(port, path, count, connections):
    """count requests spread over `connections` keep-alive connections, all at once."""
    if connections == 1:
        return send(port, path, count)
    import threading
    errors = []

    def one(n):
        try:
            send(port, path, n)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=one, args=(count // connections + (i < count % connections),))
               for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise Fail(f"{len(errors)} connection(s) failed: {errors[0]}")


def run_counted(server, path, count, out, uri, tag, tool, io_threads=1, connections=1):
    vfile = os.path.join(out, f"{tool}.{tag}.out")
    flags = ["--io-threads", str(io_threads), "--db-threads", "1"]
    cmd = drogon_cmd(uri, flags, out, tool, vfile) if server == "drogon" else coroserve_cmd(uri, tool, vfile, server,
                                                                                             out)
    p = procs.start(tag, cmd, out, cpus="0")
    try:
        port = int(p.first_line(120))
        send_concurrently(port, path, count, connections)
        stop_server(p)
    finally:
        procs.stop(p)
    return total_ir(vfile)


WRAPPERS = {"bash", "unshare", "chroot", "env", "sh", "taskset", "setarch"}


def server_pid(sid):
    """The server in a started session: not the chroot wrapper's shell (comm under valgrind is
    the tool's name)."""
    for pid in procs.session_pids(sid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() not in WRAPPERS:
                    return pid
        except OSError:
            pass
    raise Fail(f"no server process in session {sid}")


def stop_server(p, timeout=120):
    """SIGTERM to the server alone: both servers leave their loops and return from main, and
    valgrind writes its counts. Signalling the whole session would end the chroot wrapper first,
    and its unmounting would hide the output directory from valgrind."""
    pid = server_pid(p.pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and procs._stat(pid) is not None:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        if time.monotonic() > deadline:
            raise Fail(f"pid {pid} did not stop within {timeout} s; see {p.log_path}")
        time.sleep(0.1)


def spread(values):
    """(max - min) / median, in per cent."""
    return (max(values) - min(values)) / statistics.median(values) * 100


def cmd_instructions(a):
    rows = []
    for doc in a.docs:
        db, uri = standin(doc, a.out)
        try:
            for server in a.servers:
                for path in a.paths:
                    if path == "/json" and doc != a.docs[0]:
                        continue  # /json does not read the document
                    per = []
                    for rep in range(a.reps):
                        tag = f"{server}-{path.strip('/')}-{doc}-r{rep + 1}"
                        lo = run_counted(server, path, a.warmup, a.out, uri, tag + "-lo", a.tool, a.io, a.concurrency)
                        hi = run_counted(server, path, a.warmup + a.requests, a.out, uri, tag + "-hi", a.tool, a.io,
                                         a.concurrency)
                        per.append((hi - lo) / a.requests)
                        log(f"{tag}: {per[-1]:,.0f} instructions/request")
                    rows.append({"server": server, "path": path, "doc": "-" if path == "/json" else doc,
                                 "ir_per_request": statistics.median(per), "reps": per})
        finally:
            procs.stop(db)
    print("| server | route | doc | instructions/request (median) | spread | reps |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['path']} | {r['doc']} | {r['ir_per_request']:,.0f} | {spread(r['reps']):.2f} % | "
              f"{', '.join(f'{x:,.0f}' for x in r['reps'])} |")
    return rows


def server_cmd(server, uri):
    if server == "drogon":
        return drogon_cmd(uri, ["--io-threads", "1", "--db-threads", "1"], "/tmp")
    return coroserve_cmd(uri, server=server)


def strace_summary(path):
    """{syscall: calls} from strace -c's table."""
    calls = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3])
    return calls


def cmd_syscalls(a):
    rows = []
    for doc in a.docs:
        db, uri = standin(doc, a.out)
        try:
            for server in a.servers:
                for path in a.paths:
                    if path == "/json" and doc != a.docs[0]:
                        continue
                    tag = f"syscalls-{server}-{path.strip('/')}-{doc}"
                    p = procs.start(tag, server_cmd(server, uri), a.out, cpus="0")
                    try:
                        port = int(p.first_line(60))
                        send(port, path, a.warmup)
                        out_file = os.path.join(a.out, tag + ".strace")
                        st = subprocess.Popen(["strace", "-f", "-c", "-q", "-o", out_file, "-p",
                                               str(server_pid(p.pid))], stderr=subprocess.DEVNULL)
                        time.sleep(1.0)  # strace attaches to every thread
                        send(port, path, a.requests)
                        st.send_signal(signal.SIGINT)
                        st.wait(60)
                    finally:
                        procs.stop(p)
                    calls = strace_summary(out_file)
                    total = sum(calls.values()) / a.requests
                    top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
                    rows.append({"server": server, "path": path, "doc": "-" if path == "/json" else doc,
                                 "syscalls_per_request": total,
                                 "top": {k: round(v / a.requests, 2) for k, v in top}})
                    log(json.dumps(rows[-1]))
        finally:
            procs.stop(db)
    print("| server | route | doc | system calls/request | the most frequent, per request |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['path']} | {r['doc']} | {r['syscalls_per_request']:.2f} | "
              f"{', '.join(f'{k} {v}' for k, v in r['top'].items())} |")
    return rows


def annotate(path, inclusive):
    """{function: Ir} from callgrind_annotate (library paths and source files dropped; a function
    without a symbol keeps its object's name)."""
    out = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100",
                          "--auto=no", path], capture_output=True, text=True, check=True).stdout
    funcs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
        if not m or "PROGRAM TOTALS" in m.group(2):
            continue
        name = re.sub(r" \[[^\]]*\]$", "", m.group(2))
        name = name[4:] if name.startswith("???:") else name.split(":", 1)[-1]
        obj = re.search(r" \[([^\]]*)\]$", m.group(2))
        if name.startswith("0x") and obj:  # a function without a symbol (a stripped library's)
            name = f"{name} in {os.path.basename(obj.group(1))}"
        funcs[name] = funcs.get(name, 0) + int(m.group(1).replace(",", ""))
    return funcs


def object_costs(path):
    """{shared object: exclusive Ir} from a callgrind output file: every cost line adds to the
    object of the function it is in, except the line after `calls=` (a call's inclusive cost)."""
    names, costs, ob, after_call = {}, {}, "?", False
    with open(path) as f:
        for line in f:
            if line.startswith(("ob=", "cob=")):  # both name objects: "(id) name" once, then "(id)"
                m = re.match(r"c?ob=(?:\((\d+)\))?\s*(.*)", line.rstrip("\n"))
                if m.group(1) and m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith("ob="):
                    ob = names.get(m.group(1), m.group(2)) if m.group(1) else m.group(2)
            elif line.startswith("calls="):
                after_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if after_call:
                    after_call = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    costs[ob] = costs.get(ob, 0) + int(fields[1])
    return costs


def cmd_profile(a):
    rows = []
    for hi_path in sorted(f for f in os.listdir(a.out) if f.startswith("callgrind.") and f.endswith("-r1-hi.out")):
        tag = hi_path[len("callgrind."):-len("-r1-hi.out")]
        lo_path = hi_path.replace("-hi.out", "-lo.out")
        for inclusive in (False, True):
            hi, lo = annotate(os.path.join(a.out, hi_path), inclusive), annotate(os.path.join(a.out, lo_path), inclusive)
            per = {k: (v - lo.get(k, 0)) / a.requests for k, v in hi.items()}
            top = sorted(per.items(), key=lambda kv: -kv[1])[:a.top]
            rows.append({"run": tag, "inclusive": inclusive, "top": top})
            print(f"\n{tag}, {'inclusive' if inclusive else 'exclusive'} instructions per request:")
            for name, v in top:
                print(f"  {v:10,.0f}  {name[:140]}")
        hi, lo = object_costs(os.path.join(a.out, hi_path)), object_costs(os.path.join(a.out, lo_path))
        per = sorted(((k, (v - lo.get(k, 0)) / a.requests) for k, v in hi.items()), key=lambda kv: -kv[1])
        rows.append({"run": tag, "objects": per})
        print(f"\n{tag}, exclusive instructions per request by shared object (total {sum(v for _, v in per):,.0f}):")
        for name, v in per:
            if abs(v) >= 1:
                print(f"  {v:10,.0f}  {os.path.basename(name)}")
    return rows


def switches(pid):
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                n += sum(int(line.split()[1]) for line in f if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")))
        except OSError:
            pass
    return n


def cmd_threads(a):
    rows = []
    db, uri = standin("small", a.out)
    try:
        for rep in range(a.reps):
            for io in a.io_threads:
                p = procs.start(f"drogon-io{io}-r{rep + 1}", drogon_cmd(uri, ["--io-threads", str(io)], a.out),
                                a.out, cpus="0")
                try:
                    port = int(p.first_line(60))
                    for path in a.paths:
                        procs.wait_ready(p, port, path)
                        pid = server_pid(p.pid)
                        wrk = ["taskset", "-c", "1", "wrk", "-t1", f"-c{a.connections}", f"-d{a.duration}s",
                               f"http://127.0.0.1:{port}{path}"]
                        subprocess.run(wrk[:5] + ["-d1s"] + wrk[6:], capture_output=True, timeout=60)  # warm-up
                        t0 = procs._stat(pid)["cpu_ticks"]
                        s0 = switches(pid)
                        r = subprocess.run(wrk, capture_output=True, text=True, timeout=a.duration + 60)
                        ticks, s1 = procs._stat(pid)["cpu_ticks"] - t0, switches(pid)
                        reqs = int(next(line.split()[0] for line in r.stdout.splitlines() if "requests in" in line))
                        row = {"io_threads": io, "path": path, "rep": rep + 1, "requests": reqs,
                               "cpu_us_per_request": ticks / procs.CLK_TCK * 1e6 / reqs,
                               "switches_per_request": (s1 - s0) / reqs, "loadavg": os.getloadavg()[0]}
                        rows.append(row)
                        log(json.dumps(row))
                finally:
                    procs.stop(p)
    finally:
        procs.stop(db)
    print("| io threads | route | CPU µs/request (median) | context switches/request (median) | reps |")
    print("|---|---|---|---|---|")
    for io in a.io_threads:
        for path in a.paths:
            rs = [r for r in rows if r["io_threads"] == io and r["path"] == path]
            print(f"| {io} | {path} | {statistics.median(r['cpu_us_per_request'] for r in rs):.2f} | "
                  f"{statistics.median(r['switches_per_request'] for r in rs):.3f} | {len(rs)} |")
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["instructions", "syscalls", "profile", "threads"])
    p.add_argument("--top", type=int, default=15, help="profile: functions shown per run")
    p.add_argument("--servers", default="drogon,coroserve",
                   help="instructions, syscalls: of " + ",".join(BINARIES))
    p.add_argument("--paths", default="/json,/mongo")
    p.add_argument("--docs", default="small,big", help="instructions: the stand-in's document(s)")
    p.add_argument("--requests", type=int, default=1000, help="instructions: N")
    p.add_argument("--warmup", type=int, default=200, help="instructions: W")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--tool", choices=["cachegrind", "callgrind"], default="cachegrind",
                   help="instructions: callgrind also leaves per-function profiles (callgrind_annotate)")
    p.add_argument("--io-threads", default="1,2", help="threads: the values compared; instructions: drogon's (one)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="instructions: keep-alive connections sending at once (1: one at a time)")
    p.add_argument("--connections", type=int, default=200, help="threads: wrk -c")
    p.add_argument("--duration", type=int, default=3, help="threads: wrk -d, seconds")
    p.add_argument("--out", default=os.path.join("/tmp", f"drogon-cost-{os.getpid()}"))
    a = p.parse_args()
    a.servers, a.paths, a.docs = a.servers.split(","), a.paths.split(","), a.docs.split(",")
    a.io_threads = [int(x) for x in a.io_threads.split(",")]
    a.io = a.io_threads[0] if a.command == "instructions" and len(a.io_threads) == 1 else 1
    if not 1 <= a.concurrency <= 1000:
        p.error("--concurrency 1..1000")
    if not 1 <= a.requests <= 100000 or not 0 <= a.warmup <= 100000 or not 1 <= a.reps <= 20:
        p.error("--requests 1..100000, --warmup 0..100000, --reps 1..20")
    for d in a.docs:
        if d not in DOCS:
            p.error(f"unknown doc {d!r}")
    os.makedirs(a.out, exist_ok=True)
    a.out = os.path.realpath(a.out)
    for server in a.servers:
        if server not in BINARIES:
            p.error(f"unknown server {server!r} (of {', '.join(BINARIES)})")
    for need in [os.path.join(BIN, "mongo-standin")] + [BINARIES[s] for s in a.servers]:
        if not os.access(need, os.X_OK):
            p.error(f"{need} is not built")
    procs.install_cleanup()
    rows = {"instructions": cmd_instructions, "syscalls": cmd_syscalls, "profile": cmd_profile,
            "threads": cmd_threads}[a.command](a)
    with open(os.path.join(a.out, f"{a.command}.json"), "w") as f:
        json.dump(rows, f, indent=1)
    log(f"raw: {a.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        log(f"cost.py: {e}")
        sys.exit(1)
