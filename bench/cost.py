"""bench/run cost: what one request costs the server, per route, in a form that survives noise.

Wall-clock rates on a shared machine move by tens of percent between runs; the number of
user-space instructions the server executes for one request does not. For each route this
runs coroserve under `valgrind --tool=cachegrind --cache-sim=no` twice per repetition, once
with W requests and once with W+N requests over the same kind of connection, and reports

    instructions per request = (Ir(W+N) - Ir(W)) / N

so start-up, the first requests (connection to the database, lazy initialisation) and
shutdown cancel out. It also runs the server natively once per route and reads, from
/proc/PID/task/*/{status,schedstat}, the context switches and CPU time per request
(informational: those depend on the machine's load; instruction counts do not).

What is held fixed, so that two runs of the same binary agree to well under 0.5 %:
  - one I/O thread, one pool worker, one client connection at a time (concurrency 1) sending
    the same bytes; only the server process is measured (the stand-in runs natively);
  - libmongoc's monitor sleeps through the run (heartbeatFrequencyMS in the URI), and its first
    check is over before the first request: coroserve waits for it at start-up. (When the
    first request raced that check, the selection it made asked for a second check at random,
    which moved the server description every request copies: +-0.3-1.1 % per /mongo request,
    a bimodal spread, from strcmp and malloc);
  - address-space randomisation off for the server (setarch -R) and the same environment,
    so string and hash work does not move with stack addresses;
  - the 503 route: --workers 1 --queue 0 and a /sleep request holding the only worker, so
    each measured /mongo is refused at once by the full pool.

Usage: bench/run cost [--routes json,mongo,...] [--requests N] [--warmup W] [--reps R]
                      [--bin-dir build/release/bin] [--out DIR] [--mongo-uri URI]
Writes DIR/results.json (bench/run's schema family: meta, runs, skipped; "kind": "cost"),
DIR/results.md and the valgrind outputs under DIR/raw. tools/ci/perf-gate.py reads it.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_ID = "537416b501d53a77bb94135c"  # _id of bench/data/small_doc.json

# The routes, in report order. `request` is the exact bytes sent; `per_connection` routes end
# the connection after each answer (a malformed request is answered 400, then closed), so
# each of their requests comes on a new connection.
ROUTES = {
    "json": {"label": "GET /json", "target": "/json", "status": 200},
    "mongo": {"label": "GET /mongo (small)", "target": "/mongo", "status": 200},
    "mongo-big": {"label": "GET /mongo/big", "target": "/mongo/big", "status": 200},
    "mongo-doc": {"label": "GET /mongo/{collection}/{id}", "target": f"/mongo/small/{SMALL_ID}",
                  "status": 200},
    "not-found": {"label": "GET /no/such/route (404)", "target": "/no/such/route", "status": 404},
    "bad-request": {"label": "malformed request (400, closes)", "status": 400, "per_connection": True,
                    "raw": b"GET /json HTTP/1.1\r\nHost: cost\r\nContent-Length: x1\r\n\r\n"},
    # A fifth of the requests: its count is as steady as /json's, and each of its runs lasts
    # as long as the /sleep that holds the worker (which must outlast the run).
    "overload": {"label": "GET /mongo, pool full (503)", "target": "/mongo", "status": 503,
                 "overload": True, "scale": 0.2},
}


def counts_of(opts, route):
    """(W, N) of a route: --warmup and --requests, scaled down for the overload route."""
    scale = route.get("scale", 1)
    return max(1, round(opts.warmup * scale)), max(1, round(opts.requests * scale))
DEFAULTS = {"requests": 1000, "warmup": 100, "reps": 3}
# The server's flags for every route; the overload route adds --queue 0.
SERVER_FLAGS = ["--host", "127.0.0.1", "--port", "0", "--io-threads", "1", "--workers", "1",
                "--drain-timeout-ms", "0", "--demo-endpoints", "--sleep-max-ms", "600000",
                # Generous database deadlines: under valgrind on a loaded machine the first server
                # selection can take more than coroserve's default second (then a 503).
                "--server-selection-timeout-ms", "30000", "--db-timeout-ms", "30000"]
# libmongoc checks the server every heartbeatFrequencyMS (coroserve's default: 2 s); during a
# run that would add a varying number of checks. An hour is longer than any run.
URI_OPTIONS = "heartbeatFrequencyMS=3600000&connectTimeoutMS=30000"
# A pause before each request on a kept-alive connection: the server is back in epoll_wait
# when the request comes, every time (without it, whether a read completes at once or after a
# wake-up depends on timing: +-0.3 % on /json).
PACE_S = 0.001
# After the first request, time for whatever it started (the first connection's setup) to
# finish before the measured part.
SETTLE_S = 0.5
HOLD_SETTLE_S = 0.3
# The stand-in answers 1 ms late: the server's worker is then always already waiting in poll()
# for the reply (otherwise it sometimes finds part of it there at once, and reads it in more
# pieces, with other allocations).
STANDIN_LATENCY_MS = 1


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Fail(Exception):
    pass


# ---------------------------------------------------------------- the client


def request_bytes(route):
    if "raw" in route:
        return route["raw"]
    return f"GET {route['target']} HTTP/1.1\r\nHost: cost\r\n\r\n".encode()


def read_response(sock, buf):
    """Reads one HTTP/1.1 response with a Content-Length body; returns (status, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise Fail("the server closed the connection before answering")
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
    except (IndexError, ValueError):
        raise Fail(f"malformed response head: {head[:200]!r}")
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise Fail("the server closed the connection inside a body")
        buf += chunk
    return status, buf[length:]


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send_requests(port, route, count):
    """count requests, one at a time; every answer must have the route's status."""
    data, want = request_bytes(route), route["status"]
    if route.get("per_connection"):
        for _ in range(count):
            time.sleep(PACE_S)
            with connect(port) as s:
                s.sendall(data)
                status, _ = read_response(s, b"")
                # The server half-closes after its answer and reads until we close: wait for
                # its end, then pause, so that it always waits in epoll for our close.
                while s.recv(65536):
                    pass
                time.sleep(PACE_S)
            if status != want:
                raise Fail(f"{route['label']}: status {status}, expected {want}")
        return
    with connect(port) as s:
        buf = b""
        for _ in range(count):
            time.sleep(PACE_S)
            s.sendall(data)
            status, buf = read_response(s, buf)
            if status != want:
                raise Fail(f"{route['label']}: status {status}, expected {want}")
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):  # the server closes its side once it has seen ours
            pass


SLEEP_SYSCALLS = {"35", "230"}  # nanosleep, clock_nanosleep (x86-64)


def sleeping_thread(pid):
    """True when a thread of pid is in nanosleep (from /proc: the server is not disturbed);
    None when /proc does not tell (no permission, another architecture)."""
    told = False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                told = True
                if f.read().split(" ", 1)[0] in SLEEP_SYSCALLS:
                    return True
        except OSError:
            continue
    return False if told else None


def hold_the_worker(port, ms, settle_s=None, pid=None):
    """Sends /sleep on its own connection, and waits until the pool's only worker sleeps in it:
    seen from /proc when it tells (no traffic that would count), else a fixed pause."""
    s = connect(port)
    s.sendall(f"GET /sleep?ms={ms} HTTP/1.1\r\nHost: cost\r\n\r\n".encode())
    settle_s = HOLD_SETTLE_S if settle_s is None else settle_s
    if pid is not None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = sleeping_thread(pid)
            if state is None:
                break
            if state:
                return s
            time.sleep(0.02)
    time.sleep(settle_s)
    return s


def wait_until_refused(port, route, timeout=30.0):
    """Until the overload route answers 503 (the /sleep holds the worker). Only for the native
    run, whose counters are read after this: a loaded machine may take a while to get there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connect(port) as s:
            s.sendall(request_bytes(route))
            status, _ = read_response(s, b"")
        if status == 503:
            return
        time.sleep(0.05)
    raise Fail(f"{route['label']}: no 503 within {timeout} s (the /sleep did not take the worker)")


class HoldTooShort(Fail):
    """The /sleep ended while the overload route was still being measured."""


def release_the_worker(holder, ms):
    holder.settimeout(ms / 1000 + 60)
    status, _ = read_response(holder, b"")
    holder.close()
    if status != 200:
        raise Fail(f"the /sleep holding the worker answered {status}")


# ---------------------------------------------------------------- processes


class Server:
    """coroserve (natively or under valgrind), its port read from its first stdout line."""

    def __init__(self, cmd, log_path, env):
        self.log_path = log_path
        with open(log_path, "w") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.kill()
            raise Fail(f"the server printed no port (got {line!r}); see {log_path}")
        self.port = int(line)

    def stop(self, timeout=120):
        """SIGINT (coroserve drains, then exits; valgrind then writes its counts)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Fail(f"the server did not stop within {timeout} s; see {self.log_path}")
        self.proc.stdout.close()
        if code != 0:
            raise Fail(f"the server exited with {code}; see {self.log_path}")

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc.stdout.close()


def start_standin(standin, log_path):
    if not os.access(standin, os.X_OK):
        raise Fail(f"no stand-in at {standin} (build the mongo-standin target, or pass --mongo-uri)")
    small = os.path.join(ROOT, "bench/data/small_doc.json")
    big = os.path.join(ROOT, "bench/data/big_doc.json")
    cmd = [standin, "--port", "0", "--latency-ms", str(STANDIN_LATENCY_MS), "--seed", f"articles.articles={small}",
           "--seed", f"articles.small={small}", "--seed", f"articles.big={big}"]
    with open(log_path, "w") as log_file:  # the child keeps its own descriptor
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    line = p.stdout.readline().decode().strip()
    p.stdout.close()  # the port was its only output
    if not line.isdigit():
        p.kill()
        raise Fail(f"the stand-in printed no port; see {log_path}")
    return p, int(line)


def server_env():
    """The same small environment for every run (its size moves the stack, and string work)."""
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    return env


def setarch_prefix():
    """Runs the server with address-space randomisation off, when the kernel lets us."""
    setarch = shutil.which("setarch")
    if setarch and subprocess.run([setarch, platform.machine(), "-R", "true"],
                                  capture_output=True).returncode == 0:
        return [setarch, platform.machine(), "-R"]
    return []


def pin_prefix(slot=0):
    """The server on one CPU (the last, then the one before for a second parallel run, ...):
    its two threads then take turns in the same order more often than when the kernel spreads
    them over cores."""
    taskset = shutil.which("taskset")
    cpus = sorted(os.sched_getaffinity(0))
    if taskset and len(cpus) > 1:
        return [taskset, "-c", str(cpus[-1 - slot % len(cpus)])]
    return []


def server_cmd(opts, route):
    cmd = [os.path.join(opts.bin_dir, "coroserve")] + SERVER_FLAGS + ["--mongodb-uri", opts.uri]
    if route.get("overload"):
        cmd += ["--queue", "0"]
    return cmd


# ---------------------------------------------------------------- one measured server run


def exercise(port, route, count, opts, hold_ms, hold_settle_s, pid=None):
    """The traffic of one run: 1 request, a pause, count-1 requests (the overload route first
    takes the only worker with a /sleep, and waits for its answer at the end, so that the
    server stops at once)."""
    holder = hold_the_worker(port, hold_ms, hold_settle_s, pid) if route.get("overload") else None
    try:
        send_requests(port, route, 1)
        time.sleep(SETTLE_S)
        t0 = time.monotonic()
        send_requests(port, route, count - 1)
        if holder is not None and count > 1:
            per_request = (time.monotonic() - t0) / (count - 1)
            SLOWEST_REQUEST_S[0] = max(SLOWEST_REQUEST_S[0], per_request)
    except Fail as e:
        if holder is not None and "status 200" in str(e):
            raise HoldTooShort(str(e))
        raise
    finally:
        if holder is not None:
            release_the_worker(holder, hold_ms)


IR_RE = re.compile(rb"^summary:\s+(\d+)", re.M)


SLOWEST_REQUEST_S = [0.01]  # seconds per request of the slowest overload run so far


def cachegrind_run(opts, name, route, count, slot=0):
    """Instructions (Ir) of a whole server run that answered `count` requests of `route`."""
    out_file = os.path.join(opts.raw_dir, f"cachegrind.{name}.out")
    cmd = pin_prefix(slot) + opts.setarch + [opts.valgrind, "--tool=cachegrind", "--cache-sim=no"] + [
                          f"--cachegrind-out-file={out_file}"] + server_cmd(opts, route)
    # The sleep that holds the worker must outlast the run (and the server exits only when it
    # is over): sized from the slowest request seen so far, and longer on a retry.
    hold_ms, hold_settle_s = int(5000 + 3000 * count * SLOWEST_REQUEST_S[0]), HOLD_SETTLE_S
    for attempt in range(3):
        server = Server(cmd, os.path.join(opts.log_dir, f"{name}.log"), server_env())
        try:
            exercise(server.port, route, count, opts, hold_ms, hold_settle_s, server.proc.pid)
            break
        except HoldTooShort as e:
            server.kill()
            if attempt == 2:
                raise
            # Either the sleep ended too soon or it reached the worker too late: more of both.
            hold_ms, hold_settle_s = hold_ms * 2, hold_settle_s * 4
            log(f"   {name}: {e}; again with /sleep?ms={hold_ms} and {hold_settle_s:.1f} s to take the worker")
        except BaseException:
            server.kill()
            raise
    server.stop()
    with open(out_file, "rb") as f:
        m = IR_RE.search(f.read())
    if not m:
        raise Fail(f"no 'summary:' line in {out_file}")
    return int(m.group(1))


def task_counters(pid):
    """Sums over the process's threads: voluntary and involuntary switches, CPU ns."""
    vol = invol = cpu_ns = 0
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
            with open(f"{task_dir}/{tid}/schedstat") as f:
                cpu_ns += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just ended
    return vol, invol, cpu_ns


def native_run(opts, route):
    """Context switches and CPU-µs per request of the server running natively."""
    server = Server(opts.pin + server_cmd(opts, route),
                    os.path.join(opts.log_dir, f"native-{route['id']}.log"), server_env())
    hold_ms = 3000 + opts.native_requests
    try:
        holder = None
        if route.get("overload"):
            holder = hold_the_worker(server.port, hold_ms)
            wait_until_refused(server.port, route)
        send_requests(server.port, route, opts.warmup)
        before = task_counters(server.proc.pid)
        t0 = time.monotonic()
        send_requests(server.port, route, opts.native_requests)
        wall = time.monotonic() - t0
        after = task_counters(server.proc.pid)
        if holder is not None:
            release_the_worker(holder, hold_ms)
    except BaseException:
        server.kill()
        raise
    server.stop()
    n = opts.native_requests
    return {
        "requests": n,
        "voluntary_ctx_switches": round((after[0] - before[0]) / n, 3),
        "involuntary_ctx_switches": round((after[1] - before[1]) / n, 3),
        "cpu_us": round((after[2] - before[2]) / n / 1000, 2),
        "wall_us": round(wall / n * 1e6, 1),
    }


def spread_pct(values):
    lo, hi, mid = min(values), max(values), statistics.median(values)
    return round((hi - lo) / mid * 100, 3) if mid else None


def route_entry(opts, rid, runs):
    """The results.json entry of a route from its runs {(rep, count): Ir}."""
    route = ROUTES[rid]
    reps, per_request = [], []
    for rep in range(1, opts.reps + 1):
        warmup, requests = counts_of(opts, route)
        short, long_ = runs[(rep, warmup)], runs[(rep, warmup + requests)]
        value = (long_ - short) / requests
        per_request.append(value)
        reps.append({"ir_short": short, "ir_long": long_, "ir_per_request": round(value, 1)})
    return {
        "kind": "cost",
        "route": rid,
        "label": route["label"],
        "request": request_bytes(route).decode(),
        "status": route["status"],
        "ir_per_request": {
            "min": round(min(per_request), 1),
            "median": round(statistics.median(per_request), 1),
            "max": round(max(per_request), 1),
            "spread_pct": spread_pct(per_request),
        },
        "reps": reps,
    }


def measure(opts, results):
    """Every valgrind run of every route, --jobs at a time (instruction counts do not depend
    on what else runs), then the native runs one at a time."""
    tasks = [(rid, rep, count) for rid in opts.route_ids for rep in range(1, opts.reps + 1)
             for count in (counts_of(opts, ROUTES[rid])[0], sum(counts_of(opts, ROUTES[rid])))]
    counts, failed = {}, {}

    def one(task, slot):
        rid, rep, count = task
        if rid in failed:
            return
        t0 = time.monotonic()
        for attempt in (1, 2):  # a run that fails (a loaded machine, a timeout) gets one retry
            try:
                ir = cachegrind_run(opts, f"{rid}.r{rep}.n{count}", dict(ROUTES[rid], id=rid), count, slot)
                break
            except (Fail, OSError) as e:
                log(f"   {rid} rep {rep} ({count} requests), attempt {attempt}: {e}")
                if attempt == 2:
                    failed.setdefault(rid, str(e))
                    return
        counts.setdefault(rid, {})[(rep, count)] = ir
        log(f"   {rid} rep {rep}: {ir:,} instructions in a run of {count} requests "
            f"({time.monotonic() - t0:.1f} s)")

    with concurrent.futures.ThreadPoolExecutor(max_workers=opts.jobs) as pool:
        slots = iter(range(len(tasks)))
        for future in [pool.submit(one, task, next(slots) % opts.jobs) for task in tasks]:
            future.result()
    for rid in opts.route_ids:
        if rid in failed:
            results["skipped"].append({"route": rid, "reason": failed[rid]})
            continue
        entry = route_entry(opts, rid, counts[rid])
        ir = entry["ir_per_request"]
        log(f"== {rid}: {ir['median']:,.1f} instructions/request (min {ir['min']:,.1f}, max {ir['max']:,.1f}, "
            f"spread {ir['spread_pct']:.3f} %)")
        if not opts.no_native:
            try:
                entry["native"] = native_run(opts, dict(ROUTES[rid], id=rid))
            except (Fail, OSError) as e:
                log(f"   {rid}: native run failed: {e}")
        results["runs"].append(entry)
    return 1 if failed else 0


# ---------------------------------------------------------------- report


def fmt_int(x):
    return "-" if x is None else f"{x:,.0f}"


def markdown(results):
    m = results["meta"]
    lines = [
        "# Cost per request (bench/run cost)",
        "",
        f"User-space instructions per request of the coroserve process under cachegrind "
        f"({m['method']}), {m['reps']} repetitions. Context switches and CPU-µs per request "
        f"come from a native run ({m['native_requests']} requests) and are informational: "
        f"they move with the machine's load.",
        "",
        "| route | request | instructions/request (median) | min | max | spread | "
        "vol. cs/req | invol. cs/req | CPU-µs/req (informational) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        ir, nat = r["ir_per_request"], r.get("native") or {}
        lines.append(
            f"| {r['route']} | {r['label']} | {fmt_int(ir['median'])} | {fmt_int(ir['min'])} | "
            f"{fmt_int(ir['max'])} | {ir['spread_pct']:.2f}% | "
            f"{nat.get('voluntary_ctx_switches', '-')} | {nat.get('involuntary_ctx_switches', '-')} | "
            f"{nat.get('cpu_us', '-')} |")
    for s in results["skipped"]:
        lines.append(f"\n- skipped {s['route']}: {s['reason']}")
    lines.append("")
    lines.append(f"Git revision {m.get('git_rev') or 'unknown'}; {m['elapsed_s']} s.")
    return "\n".join(lines) + "\n"


def tool_versions(opts):
    """What the counts depend on (compiler, libraries, valgrind), no paths."""
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.split("\n")[0].strip()
        except (OSError, subprocess.TimeoutExpired):
            return None

    versions = {"valgrind": first_line([opts.valgrind, "--version"]),
                "compiler": first_line(["c++", "--version"])}
    for pkg in ("libmongoc-dev", "libboost-json1.81-dev", "libboost-json1.83-dev", "libc6"):
        v = first_line(["dpkg-query", "-W", "-f=${Version}", pkg])
        if v:
            versions[pkg] = v
    try:
        with open("/etc/os-release") as f:
            versions["os"] = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line) \
                .get("PRETTY_NAME", "").strip('"')
    except OSError:
        pass
    return versions


def git_rev(path):
    try:
        return subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except OSError:
        return None


# ---------------------------------------------------------------- command line


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--routes", default=",".join(ROUTES),
                   help="comma list of routes (default: all of %(default)s)")
    p.add_argument("--requests", type=int, default=DEFAULTS["requests"],
                   help="N: measured requests per run (the difference of the two runs)")
    p.add_argument("--warmup", type=int, default=DEFAULTS["warmup"],
                   help="W: requests both runs send (start-up and warm-up cancel out)")
    p.add_argument("--reps", type=int, default=DEFAULTS["reps"], help="repetitions (min/median/max)")
    p.add_argument("--native-requests", type=int, default=2000,
                   help="requests of the native run (context switches, CPU-µs)")
    p.add_argument("--no-native", action="store_true", help="skip the native run")
    p.add_argument("--jobs", type=int, default=max(1, min(4, len(os.sched_getaffinity(0)))),
                   help="valgrind runs at a time (default: the CPUs, at most 4); the counts do "
                        "not depend on it, only the time the command takes")
    p.add_argument("--bin-dir", default=os.path.join(ROOT, "build/release/bin"),
                   help="where coroserve and mongo-standin are (default build/release/bin); e.g. "
                        "a base branch's build, measured with this harness")
    p.add_argument("--mongo-uri", help="an external MongoDB instead of a stand-in started here "
                                       "(seeded as tools/ci/seed-mongo.sh does)")
    p.add_argument("--standin", help="the stand-in to serve the documents (default BIN_DIR/mongo-standin); "
                                     "the perf job gives the base branch's server the head's stand-in")
    p.add_argument("--valgrind", default="valgrind")
    p.add_argument("--out", help="results directory (default bench/results/cost-<timestamp>)")
    a = p.parse_args(argv)
    a.route_ids = [r for r in a.routes.split(",") if r]
    unknown = [r for r in a.route_ids if r not in ROUTES]
    if unknown or not a.route_ids:
        p.error(f"unknown route(s) {','.join(unknown) or '(none)'}; known: {','.join(ROUTES)}")
    if not 1 <= a.requests <= 1_000_000 or not 1 <= a.warmup <= 1_000_000:
        p.error("--requests must be 1..1000000 and --warmup 1..1000000")
    if not 1 <= a.reps <= 50 or not 1 <= a.jobs <= 16:
        p.error("--reps must be 1..50 and --jobs 1..16")
    return a


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if not shutil.which(opts.valgrind):
        log("bench/run cost: valgrind not found (tools/install-deps.sh ci installs it)")
        return 2
    coroserve = os.path.join(opts.bin_dir, "coroserve")
    if not os.access(coroserve, os.X_OK):
        log(f"bench/run cost: no server at {coroserve} (build the coroserve target)")
        return 2
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = os.path.abspath(opts.out or os.path.join(ROOT, "bench/results", f"cost-{stamp}"))
    opts.raw_dir, opts.log_dir = os.path.join(out, "raw"), os.path.join(out, "logs")
    os.makedirs(opts.raw_dir, exist_ok=True)
    os.makedirs(opts.log_dir, exist_ok=True)
    opts.setarch = setarch_prefix()
    opts.pin = pin_prefix()

    t0 = time.monotonic()
    standin = None
    if opts.mongo_uri:
        base_uri = opts.mongo_uri
    else:
        standin, standin_port = start_standin(opts.standin or os.path.join(opts.bin_dir, "mongo-standin"),
                                              os.path.join(opts.log_dir, "standin.log"))
        base_uri = f"mongodb://127.0.0.1:{standin_port}/"
    sep = "&" if "?" in base_uri else ("?" if base_uri.endswith("/") else "/?")
    opts.uri = base_uri + sep + URI_OPTIONS

    results = {
        "meta": {
            "kind": "cost",
            "timestamp": stamp,
            "git_rev": git_rev(os.path.dirname(os.path.abspath(opts.bin_dir))),
            "harness_rev": git_rev(ROOT),
            "method": f"(Ir at {opts.warmup}+{opts.requests} requests - Ir at {opts.warmup}) / "
                      f"{opts.requests} (a fifth of both for overload), cachegrind --cache-sim=no, "
                      f"concurrency 1",
            "requests": opts.requests, "warmup": opts.warmup, "reps": opts.reps, "jobs": opts.jobs,
            "native_requests": opts.native_requests,
            "server_flags": SERVER_FLAGS, "uri_options": URI_OPTIONS,
            "aslr_off": bool(opts.setarch), "pinned": bool(opts.pin),
            "pace_ms": PACE_S * 1000, "settle_s": SETTLE_S,
            "database": "external MongoDB" if opts.mongo_uri else "mongo-standin",
            "versions": tool_versions(opts),
            "machine": {"cores": os.cpu_count(), "cpu": cpu_model(), "loadavg_at_start": loadavg()},
        },
        "runs": [],
        "skipped": [],
    }
    code = 1
    try:
        code = measure(opts, results)
    finally:
        if standin is not None:
            standin.terminate()
            standin.wait(10)
        results["meta"]["elapsed_s"] = round(time.monotonic() - t0, 1)
        results["meta"]["machine"]["loadavg_at_end"] = loadavg()
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        with open(os.path.join(out, "results.md"), "w") as f:
            f.write(markdown(results))
    log(f"== done in {results['meta']['elapsed_s']} s: {out}/results.md")
    return code


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
