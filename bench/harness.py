"""bench/run: the seed's battle re-run on one machine, and the experiments beyond it.

Sub-commands (each can run alone; `all` runs them in turn into one results directory):
  matrix   (default) every contender x doc x connections with wrk, median of --reps; cost per
           request (server and stand-in CPU-us, server context switches) for every point
  decompose each DB-backed contender taken apart: (a) HTTP only (/json), (b) driver only
           (find_one loops in its language and driver), (c) composite /mongo, CPU-us per
           request, and 1/(1/a+1/b) beside (c); --profile profiles Node's composite
  sweep    the stand-in's --latency-ms 0,1,10 against coroserve at a few --workers and the async peers
  sleep    the seed's /sleep demo: 1 worker vs 2 workers, and /sleep/async
  idle     RSS growth per idle keep-alive connection (10,000 held by bench/clients/idle_hold.py)
  openloop latency at a fixed offered rate below saturation (bench/clients/openloop.py)
  report   re-render results.md/csv and the charts of --out DIR from its results.json

Modes: quick (default: 3 s x 3 reps, 2 s warm-up), --full (30 s x 3 reps, 5 s warm-up, the
seed's), --ci. Before measuring: tools/install-deps.sh bench and the Release build (unless
--no-build; a failure of either is an error), then the load-average guard (1-min load average
<= --max-load, waiting up to --load-wait s; --allow-busy overrides and marks results.md).
Exit status: 0 all ran; 2 setup error (a requested contender cannot run, install/build failed,
busy machine, gnuplot or wrk missing); 3 a contender or point was lost during the run. With
--allow-skip, skipped contenders are listed at the top of results.md and the exit status is 0.
Charts (PNG) are drawn with gnuplot (Debian gnuplot-nox). See bench/README.md.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import contenders as cont
import decompose
import procs
import report
import wrkparse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"  # Debian's: it has flask, gevent, tornado, motor, pymongo
DOCS = {"small": "bench/data/small_doc.json", "big": "bench/data/big_doc.json"}
BUILD_TARGETS = ["coroserve", "mongo-standin", "mongo-driver-load", "mongo-seed"]

# CPU placement, the same for every contender (bench/README.md, "CPU placement").
LAYOUTS = {
    # server + stand-in share CPU 0; wrk and the load clients run alone on CPU 1.
    "split": {"server": "0", "load": "1"},
    # the server alone on CPU 0; the stand-in shares CPU 1 with wrk (the seed had the DB on
    # another machine than the server).
    "server-alone": {"server": "0", "load": "1", "db": "1"},
    # no pinning: everything may run on both cores.
    "none": {"server": None, "load": None},
}

QUICK = {"duration": 3, "warmup": 2, "reps": 3}
FULL = {"duration": 30, "warmup": 5, "reps": 3}
CI = {"duration": 2, "warmup": 1, "reps": 1, "connections": [200, 1000],
      "contenders": ["coroserve", "nginx", "coroserve-json"]}


class Ctx:
    """What every step needs: paths, placement, limits, the docs' JSON bytes."""

    def __init__(self, args, out):
        self.args = args
        self.root = ROOT
        self.python = PYTHON
        self.bin_dir = os.path.abspath(args.bin_dir) if args.bin_dir else os.path.join(ROOT, "build/release/bin")
        self.peers_build = os.path.join(ROOT, "build/bench-peers")
        self.out = out
        self.log_dir = os.path.join(out, "logs")
        self.raw_dir = os.path.join(out, "raw")
        os.makedirs(self.log_dir, exist_ok=True)
        os.makedirs(self.raw_dir, exist_ok=True)
        layout = LAYOUTS[args.pinning]
        self.server_cpus, self.load_cpus = layout["server"], layout["load"]
        self.db_cpus = layout.get("db", layout["server"])
        self.cores = os.cpu_count() or 1
        # Processes of a multi-process peer (Node cluster, Tornado, gunicorn, uwsgi): --peer-processes,
        # else one per CPU the server is pinned to (bench/README.md, "Every peer at its documented best").
        self.peer_processes = args.peer_processes or (len(self.server_cpus.split(",")) if self.server_cpus
                                                      else self.cores)
        self.nofile = procs.raise_fd_limit()
        self.somaxconn = raise_somaxconn(16384)
        self.backlog = min(self.somaxconn, 16384)
        self.coroserve_flags = dict(kv.split("=", 1) for kv in args.coroserve_flag)
        self.doc_json = {name: relaxed_json(os.path.join(ROOT, path)) for name, path in DOCS.items()}
        self.standin = args.standin or os.path.join(self.bin_dir, "mongo-standin")
        self._seq = 0

    def name(self, what, doc=""):
        """A unique name for a started process (its log files are named after it)."""
        self._seq += 1
        return f"{self._seq:03d}-{what}" + (f"-{doc}" if doc else "")


def relaxed_json(path):
    """The doc as coroserve prints it: compact relaxed extended JSON, ObjectId as {"$oid": ...}."""
    from bson import json_util  # Debian python3-pymongo
    with open(path) as f:
        doc = json_util.loads(f.read())
    return json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS, separators=(",", ":"))


def raise_somaxconn(want):
    """Listen backlogs are capped by net.core.somaxconn: raise it when we may (root)."""
    path = "/proc/sys/net/core/somaxconn"
    try:
        with open(path) as f:
            cur = int(f.read())
        if cur < want:
            with open(path, "w") as f:
                f.write(str(want))
            with open(path) as f:
                cur = int(f.read())
        return cur
    except (OSError, ValueError):
        try:
            with open(path) as f:
                return int(f.read())
        except (OSError, ValueError):
            return 4096


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return None


def log(msg):
    print(msg, flush=True)


def fmt_s(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """'run i/N, elapsed, ETA' lines; ETA from the mean time of the runs done so far."""

    def __init__(self, total, guess_s):
        self.total, self.done, self.guess = total, 0, guess_s
        self.measured = 0  # measured runs so far (the matrix numbers them: rep["order"])
        self.t0 = time.monotonic()

    def line(self, text):
        self.done += 1
        elapsed = time.monotonic() - self.t0
        per = elapsed / self.done if self.done else self.guess
        eta = per * (self.total - self.done)
        log(f"[run {self.done}/{self.total} | elapsed {fmt_s(elapsed)} | ETA {fmt_s(eta)}] {text}")


# ---------------------------------------------------------------------------------------------
# Setup: dependencies, build, the database


class SetupError(RuntimeError):
    """The run cannot be trusted to start (dependencies, busy machine, a contender missing)."""


def install_and_build(args):
    """tools/install-deps.sh bench, then the Release build of the targets. A failure of
    either is an error (SetupError): a run on half-installed tools would skip contenders.
    Returns {target: error or None}."""
    if args.no_build:
        log(f"{stamp_now()} dependencies and build skipped (--no-build)")
        return {}
    log(f"{stamp_now()} installing dependencies: tools/install-deps.sh bench (apt-get runs only if one is missing)")
    r = subprocess.run([os.path.join(ROOT, "tools/install-deps.sh"), "bench"], cwd=ROOT)
    if r.returncode:
        raise SetupError(f"tools/install-deps.sh bench exited {r.returncode} (see its output above); "
                         "fix the install or pass --no-build to run with what is installed")
    log(f"{stamp_now()} configuring: cmake --preset release")
    r = subprocess.run(["cmake", "--preset", "release"], cwd=ROOT, stdout=subprocess.DEVNULL)
    if r.returncode:
        raise SetupError("cmake --preset release failed (see its output above)")
    log(f"{stamp_now()} building {', '.join(BUILD_TARGETS)} (Release)")
    build = ["cmake", "--build", "--preset", "release", "-j", str(os.cpu_count() or 2), "--target"]
    if subprocess.run(build + BUILD_TARGETS, cwd=ROOT).returncode == 0:
        return {t: None for t in BUILD_TARGETS}
    # One failed: build them one by one to know which (the contenders needing it are skipped,
    # which is itself an error unless --allow-skip).
    status = {}
    for t in BUILD_TARGETS:
        r = subprocess.run(build + [t], cwd=ROOT, capture_output=True, text=True)
        status[t] = None if r.returncode == 0 else ((r.stdout + r.stderr).strip().splitlines() or ["?"])[-1][:200]
        log(f"   build {t}: {'ok' if status[t] is None else 'FAILED: ' + status[t]}")
    return status


_T0 = time.monotonic()


def stamp_now():
    """'[0m05s]': time since bench/run started, at the head of every progress line."""
    return f"[{fmt_s(time.monotonic() - _T0)}]"


def wait_until_quiet(args):
    """The load-average guard: the 1-min load average must be at most --max-load before the
    first point. Waits up to --load-wait seconds for it (a build that just finished keeps it
    high for a minute or two), then refuses unless --allow-busy. Returns the load seen."""
    la = loadavg()
    if la is None or la <= args.max_load:
        log(f"{stamp_now()} load average {la} <= {args.max_load}: the machine is quiet enough")
        return la
    deadline = time.monotonic() + (0 if args.allow_busy else args.load_wait)
    while la is not None and la > args.max_load and time.monotonic() < deadline:
        log(f"{stamp_now()} load average {la:.2f} > {args.max_load}: waiting for the machine to calm down "
            f"({fmt_s(deadline - time.monotonic())} left of --load-wait; other processes: see `top`)")
        time.sleep(min(10, max(deadline - time.monotonic(), 0.1)))
        la = loadavg()
    if la is not None and la > args.max_load:
        if args.allow_busy:
            log(f"{stamp_now()} warning: load average {la:.2f} > {args.max_load}; running anyway (--allow-busy), "
                "results.md is marked as measured on a busy machine")
            return la
        raise SetupError(f"load average {la:.2f} is above {args.max_load} after waiting {args.load_wait} s: "
                         "the figures would measure the other processes too. Stop them, or pass --allow-busy "
                         "(the run is then marked busy in results.md)")
    log(f"{stamp_now()} load average {la} <= {args.max_load}: the machine is quiet enough")
    return la


class Database:
    """The stand-in (one per doc and latency), or an external MongoDB seeded with mongo-seed."""

    def __init__(self, ctx, doc, latency_ms=0):
        self.ctx, self.doc, self.proc = ctx, doc, None
        doc_path = os.path.join(ROOT, DOCS[doc])
        if ctx.args.mongo_uri:
            if latency_ms:
                raise RuntimeError("--latency-ms needs the stand-in, not --mongo-uri")
            seeder = os.path.join(ctx.bin_dir, "mongo-seed")
            r = subprocess.run([seeder, "--uri", ctx.args.mongo_uri, f"articles.articles={doc_path}"],
                               capture_output=True, text=True, timeout=60)
            if r.returncode:
                raise RuntimeError(f"mongo-seed failed: {r.stderr.strip()[-300:]}")
            self.uri = ctx.args.mongo_uri
            return
        cmd = [ctx.standin, "--port", "0", "--bind", "127.0.0.1", "--seed", f"articles.articles={doc_path}"]
        if latency_ms:
            cmd += ["--latency-ms", str(latency_ms)]
        if ctx.args.standin_threads:
            cmd += ["--threads", str(ctx.args.standin_threads)]
        self.proc = procs.start(ctx.name("standin", f"{doc}-{latency_ms}ms"), cmd, ctx.log_dir,
                                cpus=ctx.db_cpus)
        self.uri = f"mongodb://127.0.0.1:{int(self.proc.first_line(20))}"

    def stop(self):
        if self.proc:
            procs.stop(self.proc)


def driver_find_rate(ctx):
    """mongo-driver-load against the small-doc database (the stand-in, or --mongo-uri): the
    database's driver-only find rate, to show it is not the bottleneck."""
    tool = os.path.join(ctx.bin_dir, "mongo-driver-load")
    if not os.access(tool, os.X_OK):
        return None, "mongo-driver-load was not built"
    db = Database(ctx, "small")
    try:
        # As many driver threads as coroserve has pool workers, at least 16: the rate should be
        # the database's, not the client's.
        threads = max(16, int(dict(cont.COROSERVE_BEST, **ctx.coroserve_flags).get("--workers", 16)))
        cmd = [tool, "--uri", db.uri, "--threads", str(threads), "--seconds", "3"]
        if ctx.load_cpus:
            cmd = ["taskset", "-c", ctx.load_cpus] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode:
            return None, f"mongo-driver-load exited {r.returncode}: {r.stderr.strip()[-200:]}"
        data = json.loads(r.stdout.strip().splitlines()[-1])
        for key in ("finds_per_sec", "ops_per_s", "ops_per_sec", "rate"):
            if key in data:
                return float(data[key]), data
        rate = next((v for k, v in data.items() if "ops" in k and isinstance(v, (int, float))), None)
        return rate, data
    except (subprocess.TimeoutExpired, ValueError, IndexError) as e:
        return None, f"mongo-driver-load: {e}"
    finally:
        db.stop()


# ---------------------------------------------------------------------------------------------
# One wrk run


def run_wrk(ctx, port, path, connections, duration, timeout_s, raw_name, sids=(), db_sid=None):
    """Runs wrk once; returns the parsed repetition (plus RSS/CPU of the sampled trees)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", f"{timeout_s}s",
           f"http://127.0.0.1:{port}{path}"]
    load_before = loadavg()
    sampler = procs.TreeSampler(sids)
    db_sampler = procs.TreeSampler([db_sid] if db_sid else [])
    with sampler, db_sampler:
        p = procs.start(raw_name, cmd, ctx.raw_dir, cpus=ctx.load_cpus)
        try:
            p.popen.wait(duration + timeout_s + 60)
        except subprocess.TimeoutExpired:
            procs.stop(p)
            raise RuntimeError("wrk did not finish in time")
        procs.stop(p)
    with open(p.stdout_path) as f:
        text = f.read()
    try:
        rep = wrkparse.parse(text)
    except ValueError:
        raise RuntimeError(f"wrk failed: {p.log_tail()}")
    rep["rss_peak_kb"] = sampler.peak_rss_kb if sids else None
    rep["cpu_s"] = round(sampler.cpu_s, 2) if sids else None
    rep["standin_cpu_s"] = round(db_sampler.cpu_s, 2) if db_sid else None
    rep["ctx_switches"] = sampler.switches if sids else None
    rep["standin_ctx_switches"] = db_sampler.switches if db_sid else None
    rep["raw"] = os.path.relpath(p.stdout_path, ctx.out)
    # Before the point (the guard's figure) and after it (which includes the run's own load:
    # server + wrk keep both cores busy, so about 2 is normal there).
    rep["loadavg_before"] = load_before
    rep["loadavg_1m"] = loadavg()
    return rep


def start_ready(ctx, c, doc, db, extra=None):
    """Starts contender c and waits until its endpoint answers 200; returns (proc, port, body)."""
    proc, port = c.start(ctx, doc, db.uri if db else None, extra)
    try:
        body = procs.wait_ready(proc, port, c.endpoint.split("?")[0] if "sleep" not in c.endpoint else c.endpoint,
                                timeout=45)
    except Exception:
        procs.stop(proc)
        raise
    return proc, port, body


def fmt_rep(rep):
    e = rep["errors"]
    err = sum(e.values())
    lat = rep["latency_ms"]
    p99 = f"{lat['p99']:.1f}" if lat.get("p99") is not None else "-"
    return (f"{rep['rps_ok']:.0f} ok req/s, p99 {p99} ms, errors {err} "
            f"(c{e['connect']} r{e['read']} w{e['write']} t{e['timeout']}), non2xx {rep['non2xx']}, "
            f"rss {rep.get('rss_peak_kb') or 0} KiB, cpu {rep.get('cpu_s')} s")


# ---------------------------------------------------------------------------------------------
# matrix


def prepare_contenders(ctx, ids, results, built):
    """Prepares each wanted contender; the ones that cannot run go to results['skipped']."""
    table = cont.by_id()
    ready = []
    n_skipped = len(results["skipped"])
    for cid in ids:
        c = table[cid]
        log(f"{stamp_now()} preparing {cid}{' (' + c.prepare_note + ')' if c.prepare_note else ''}")
        try:
            if c.needs_db and not ctx.args.mongo_uri and not os.access(ctx.standin, os.X_OK):
                raise cont.Skip(f"no MongoDB stand-in ({ctx.standin} not built)")
            c.prepare(ctx)
            ready.append(c)
        except cont.Skip as e:
            add_skip(results, cid, str(e))
        except Exception as e:  # noqa: BLE001 - a broken contender must not stop the others
            add_skip(results, cid, f"prepare failed: {e}")
    missing = results["skipped"][n_skipped:]
    if missing and not ctx.args.allow_skip:
        raise SetupError(f"{len(missing)} requested contender(s) cannot run: "
                         + "; ".join(f"{s['contender']}: {s['reason']}" for s in missing)
                         + ". Fix that, or pass --allow-skip to run the others (results.md lists the skipped)")
    return ready


def add_skip(results, cid, reason, **more):
    log(f"   SKIP {cid}: {reason}")
    entry = {"contender": cid, "reason": reason}
    entry.update(more)
    results["skipped"].append(entry)


def matrix_steps(contenders, connections, reps, order):
    """The matrix's measured runs for one doc, in the order they run: [(rep, connections,
    contender)]. grouped: a contender's points and reps back to back (drift over a long run
    lands on whole contenders). interleaved: repetition by repetition, each connection count,
    every contender in turn, forward on even repetitions and backward on odd ones, so that a
    linear drift adds the same to every contender over a pair of repetitions (ABBA)."""
    if order == "grouped":
        return [(r, n, c) for c in contenders for n in connections for r in range(reps)]
    steps = []
    for r in range(reps):
        turn = contenders if r % 2 == 0 else contenders[::-1]
        steps += [(r, n, c) for n in connections for c in turn]
    return steps


def cmd_matrix(ctx, results):
    a = ctx.args
    ready = prepare_contenders(ctx, a.contenders, results, None)
    # interleaved: a start and a full warm-up before every repetition (matrix_interleaved)
    per_run = a.duration + 1 + (a.warmup / a.reps if a.order == "grouped" else a.warmup + 1)
    progress = Progress(len(ready) * len(a.docs) * len(a.connections) * a.reps, per_run)
    log(f"== matrix: {len(ready)} contenders x {len(a.docs)} docs x {len(a.connections)} connection counts "
        f"x {a.reps} reps, {a.duration} s each (+{a.warmup} s warm-up "
        f"{'per point' if a.order == 'grouped' else 'per run, on a freshly started server'}), order {a.order}")
    for doc in a.docs:
        db = None
        if any(c.needs_db for c in ready):
            try:
                db = Database(ctx, doc)
            except Exception as e:  # noqa: BLE001
                for c in ready:
                    if c.needs_db:
                        add_skip(results, c.id, f"database for doc {doc} failed: {e}", doc=doc)
                        progress.done += len(a.connections) * a.reps
        try:
            runnable = [c for c in ready if db is not None or not c.needs_db]
            if a.order == "grouped":
                for c in runnable:
                    matrix_contender(ctx, results, c, doc, db, progress)
            else:
                matrix_interleaved(ctx, results, runnable, doc, db, progress)
        finally:
            if db:
                db.stop()


def matrix_start(ctx, results, c, doc, db):
    """Starts c and waits for its first 200; (proc, port). Raises when it does not start."""
    log(f"{stamp_now()} starting {c.id} ({doc} doc) and waiting for its first 200")
    proc, port, body = start_ready(ctx, c, doc, db)
    results.setdefault("bodies", {}).setdefault(c.id, {})[doc] = len(body)
    if c.id == "coroserve" and body.decode(errors="replace") != ctx.doc_json[doc]:
        # nginx serves ctx.doc_json: say so when coroserve's bytes differ from it.
        results["meta"].setdefault("nginx_bytes_differ", {})[doc] = {
            "coroserve": body[:300].decode(errors="replace"), "nginx": ctx.doc_json[doc][:300]}
        log(f"   note: coroserve's {doc} body ({len(body)} B) differs from nginx's file "
            f"({len(ctx.doc_json[doc])} B)")
    return proc, port


def matrix_rep(ctx, c, proc, port, doc, db, n, i, warmup, progress):
    """Warm-up of `warmup` s (discarded), then repetition i of the point (c, doc, n): the parsed
    rep, with `order` (its place among the matrix's measured runs) and the stand-in's open file
    descriptors after it."""
    a = ctx.args
    if warmup:
        log(f"{stamp_now()} {c.id} {doc} c={n}: warming up {warmup} s")
        run_wrk(ctx, port, c.endpoint, n, warmup, a.wrk_timeout, f"warmup-{c.id}-{doc}-c{n}-r{i + 1}")
    rep = run_wrk(ctx, port, c.endpoint, n, a.duration, a.wrk_timeout, f"{c.id}-{doc}-c{n}-r{i + 1}",
                  sids=[proc.pid], db_sid=db.proc.pid if (db and db.proc and c.needs_db) else None)
    if db and db.proc:
        rep["standin_fds"] = procs.open_fds(db.proc.pid)
    progress.measured += 1
    rep["order"] = progress.measured
    progress.line(f"{c.id} {doc} c={n} rep {i + 1}/{a.reps}: {fmt_rep(rep)}")
    time.sleep(a.pause)
    return rep


def matrix_point(c, doc, n, reps, server_alive_after):
    point = {"contender": c.id, "endpoint": c.endpoint, "doc": doc, "connections": n}
    point.update(wrkparse.summarize(reps))
    point["server_alive_after"] = server_alive_after
    return point


def matrix_contender(ctx, results, c, doc, db, progress):
    """--order grouped: c's points one after the other on one server, reps back to back."""
    a = ctx.args
    try:
        proc, port = matrix_start(ctx, results, c, doc, db)
    except Exception as e:  # noqa: BLE001
        add_skip(results, c.id, f"did not start for doc {doc}: {e}", doc=doc)
        progress.done += len(a.connections) * a.reps
        return
    try:
        for n in a.connections:
            if not proc.alive():
                add_skip(results, c.id, f"server exited before {doc} c={n}: {proc.log_tail()}", doc=doc,
                         connections=n)
                progress.done += a.reps
                continue
            reps = []
            try:
                for i in range(a.reps):
                    reps.append(matrix_rep(ctx, c, proc, port, doc, db, n, i, a.warmup if i == 0 else 0, progress))
            except RuntimeError as e:
                add_skip(results, c.id, f"{doc} c={n}: {e}", doc=doc, connections=n)
                progress.done += a.reps - len(reps)
                continue
            results["runs"].append(matrix_point(c, doc, n, reps, proc.alive()))
            report.save(ctx.out, results)  # a partial run still leaves results behind
    finally:
        procs.stop(proc)


def matrix_interleaved(ctx, results, ready, doc, db, progress):
    """--order interleaved: the runs in matrix_steps' order, each on a freshly started server
    with a full warm-up, stopped after it. One server at a time: a server left up after its
    run keeps working through the requests and finds still queued when wrk stopped (thousands
    at c=5000) and would measure itself into the next contender's run. The points go to
    results['runs'] in grouped order, re-summarised after each run (a partial run leaves its
    completed repetitions behind)."""
    a = ctx.args
    reps = {(c.id, n): [] for c in ready for n in a.connections}
    alive_after, lost = {}, set()
    first = len(results["runs"])
    for i, n, c in matrix_steps(ready, a.connections, a.reps, a.order):
        if (c.id, n) in lost:
            continue
        try:
            proc, port = matrix_start(ctx, results, c, doc, db)
        except Exception as e:  # noqa: BLE001
            proc, why = None, f"did not start for doc {doc} c={n} rep {i + 1}: {e}"
        if proc:
            try:
                reps[c.id, n].append(matrix_rep(ctx, c, proc, port, doc, db, n, i, a.warmup, progress))
                alive_after[c.id, n], why = proc.alive(), None
            except RuntimeError as e:
                why = f"{doc} c={n}: {e}"
            finally:
                procs.stop(proc)
        if why:
            add_skip(results, c.id, why, doc=doc, connections=n)
            lost.add((c.id, n))
            progress.done += a.reps - len(reps[c.id, n])
            continue
        results["runs"][first:] = [matrix_point(c2, doc, n2, reps[c2.id, n2], alive_after[c2.id, n2])
                                   for c2 in ready for n2 in a.connections
                                   if reps[c2.id, n2] and (c2.id, n2) not in lost]
        report.save(ctx.out, results)


# ---------------------------------------------------------------------------------------------
# sweep: DB latency x pool size


def cmd_sweep(ctx, results):
    a = ctx.args
    table = cont.by_id()
    configs = [("coroserve", {"--workers": str(w)}, f"coroserve workers={w}") for w in a.sweep_workers]
    configs += [(cid, None, cid) for cid in a.sweep_peers]
    ready_ids = {c.id for c in prepare_contenders(ctx, sorted({cid for cid, _, _ in configs}), results, None)}
    configs = [x for x in configs if x[0] in ready_ids]
    n = a.sweep_connections
    progress = Progress(len(configs) * len(a.latencies), a.duration + a.warmup + 2)
    log(f"== sweep: stand-in latency {a.latencies} ms x {len(configs)} configs, c={n}, doc small")
    out = results.setdefault("sweep", [])
    for lat in a.latencies:
        if a.mongo_uri:
            add_skip(results, "sweep", "the latency sweep needs the stand-in (--mongo-uri given)")
            return
        db = Database(ctx, "small", lat)
        try:
            for cid, extra, label in configs:
                c = table[cid]
                try:
                    proc, port, _ = start_ready(ctx, c, "small", db, extra)
                except Exception as e:  # noqa: BLE001
                    add_skip(results, label, f"latency {lat} ms: did not start: {e}")
                    progress.done += 1
                    continue
                try:
                    if a.warmup:
                        run_wrk(ctx, port, c.endpoint, n, a.warmup, a.wrk_timeout, f"warmup-sweep-{cid}-{lat}ms")
                    rep = run_wrk(ctx, port, c.endpoint, n, a.duration, a.wrk_timeout,
                                  f"sweep-{label.replace(' ', '_').replace('=', '')}-{lat}ms",
                                  sids=[proc.pid], db_sid=db.proc.pid if db.proc else None)
                    row = {"config": label, "contender": cid, "latency_ms_db": lat, "connections": n,
                           "workers": (extra or {}).get("--workers")}
                    row.update({k: rep[k] for k in ("rps_ok", "rps", "latency_ms", "errors", "non2xx",
                                                    "rss_peak_kb", "cpu_s", "raw", "loadavg_1m")})
                    if row["workers"] and lat:
                        row["pool_bound_rps"] = int(row["workers"]) * 1000 / lat
                    out.append(row)
                    progress.line(f"sweep {label} db-latency {lat} ms: {fmt_rep(rep)}")
                except RuntimeError as e:
                    add_skip(results, label, f"latency {lat} ms: {e}")
                    progress.done += 1
                finally:
                    procs.stop(proc)
                report.save(ctx.out, results)
        finally:
            db.stop()


# ---------------------------------------------------------------------------------------------
# sleep: the seed's /sleep demonstration


def cmd_sleep(ctx, results):
    a = ctx.args
    table = cont.by_id()
    dur = a.sleep_duration
    cases = [
        ("coroserve", {"--workers": "1"}, "/sleep?ms=1000", 1, "coroserve --workers 1, /sleep 1 s"),
        ("coroserve", {"--workers": "1"}, "/sleep?ms=1000", 2, "coroserve --workers 1, /sleep 1 s"),
        ("coroserve", {"--workers": "2"}, "/sleep?ms=1000", 2, "coroserve --workers 2, /sleep 1 s"),
        ("coroserve", {"--workers": "1"}, "/sleep/async?ms=1000", 2, "coroserve --workers 1, /sleep/async 1 s"),
        ("coroserve", {"--workers": "1"}, "/sleep/async?ms=1000", 100, "coroserve --workers 1, /sleep/async 1 s"),
        ("flask-uwsgi-threaded", {"processes": 1, "threads": 1}, "/sleep", 1, "uwsgi 1 process 1 thread, /sleep 1 s"),
        ("flask-uwsgi-threaded", {"processes": 1, "threads": 1}, "/sleep", 2, "uwsgi 1 process 1 thread, /sleep 1 s"),
        ("flask-uwsgi-threaded", {"processes": 1, "threads": 2}, "/sleep", 2, "uwsgi 1 process 2 threads, /sleep 1 s"),
    ]
    ids = sorted({c[0] for c in cases})
    ready_ids = {c.id for c in prepare_contenders(ctx, ids, results, None)}
    cases = [x for x in cases if x[0] in ready_ids]
    progress = Progress(len(cases), dur + 3)
    log(f"== sleep: {len(cases)} cases, {dur} s each")
    out = results.setdefault("sleep", [])
    db = Database(ctx, "small")
    try:
        for cid, extra, path, n, label in cases:
            c = table[cid]
            try:
                proc, port, _ = start_ready(ctx, c, "small", db, extra)
            except Exception as e:  # noqa: BLE001
                add_skip(results, label, f"did not start: {e}")
                progress.done += 1
                continue
            try:
                rep = run_wrk(ctx, port, path, n, dur, 10, f"sleep-{cid}-{n}c-{len(out)}", sids=[proc.pid])
                row = {"case": label, "contender": cid, "path": path, "connections": n}
                row.update({k: rep[k] for k in ("requests", "rps_ok", "latency_ms", "errors", "non2xx", "raw",
                                                "loadavg_1m")})
                out.append(row)
                progress.line(f"sleep {label}, {n} conn: {rep['requests']} requests, {rep['rps_ok']:.2f} ok req/s, "
                              f"p50 {rep['latency_ms']['p50']} ms")
            except RuntimeError as e:
                add_skip(results, label, str(e))
                progress.done += 1
            finally:
                procs.stop(proc)
            report.save(ctx.out, results)
    finally:
        db.stop()


# ---------------------------------------------------------------------------------------------
# idle: memory per idle keep-alive connection


def cmd_idle(ctx, results):
    a = ctx.args
    ids = [cid for cid in a.contenders if cid != "coroserve-json"] if not a.idle_contenders else a.idle_contenders
    ready = prepare_contenders(ctx, ids, results, None)
    progress = Progress(len(ready), 20)
    log(f"== idle: {a.idle_connections} idle keep-alive connections per contender (doc small)")
    out = results.setdefault("idle", [])
    db = Database(ctx, "small")
    client = os.path.join(ROOT, "bench/clients/idle_hold.py")
    try:
        for c in ready:
            try:
                proc, port, _ = start_ready(ctx, c, "small", db)
            except Exception as e:  # noqa: BLE001
                add_skip(results, c.id, f"idle: did not start: {e}")
                progress.done += 1
                continue
            holder = None
            try:
                # Warm the server first so lazy allocations (DB pool, caches) are not counted.
                run_wrk(ctx, port, c.endpoint, 100, 1, a.wrk_timeout, f"warmup-idle-{c.id}")
                time.sleep(1)
                rss0, _ = procs.tree_usage(proc.pid)
                cmd = [PYTHON, client, "--port", str(port), "--path", c.endpoint,
                       "--connections", str(a.idle_connections), "--hold", "8"]
                holder = procs.start(ctx.name("idle-holder", c.id), cmd, ctx.log_dir, cpus=ctx.load_cpus)
                held = json.loads(holder.first_line(120))
                time.sleep(1.5)
                rss1 = max(procs.tree_usage(proc.pid)[0] for _ in range(3) if time.sleep(0.2) is None)
                holder.popen.wait(30)
                lines = open(holder.stdout_path).read().strip().splitlines()
                final = json.loads(lines[-1]) if len(lines) > 1 else held
                alive = final.get("alive", held.get("open"))
                row = {"contender": c.id, "connections_requested": a.idle_connections,
                       "connections_answered": held.get("answered"), "connections_open_at_sample": held.get("open"),
                       "connections_alive_at_end": alive, "rss_before_kb": rss0, "rss_after_kb": rss1,
                       "rss_growth_kb": rss1 - rss0,
                       "server_alive": proc.alive()}
                n_open = held.get("open") or 0
                row["bytes_per_connection"] = round((rss1 - rss0) * 1024 / n_open) if n_open >= a.idle_connections / 2 else None
                out.append(row)
                progress.line(f"idle {c.id}: {n_open} open, alive at end {alive}, RSS {rss0} -> {rss1} KiB, "
                              f"{row['bytes_per_connection']} B/connection")
            except Exception as e:  # noqa: BLE001
                add_skip(results, c.id, f"idle: {e}")
                progress.done += 1
            finally:
                if holder:
                    procs.stop(holder)
                procs.stop(proc)
            report.save(ctx.out, results)
    finally:
        db.stop()


# ---------------------------------------------------------------------------------------------
# openloop: fixed offered rate


def cmd_openloop(ctx, results):
    a = ctx.args
    ids = a.openloop_contenders or [cid for cid in a.contenders]
    ready = prepare_contenders(ctx, ids, results, None)
    progress = Progress(len(ready) * len(a.rates), a.openloop_duration + 5)
    log(f"== openloop: {len(ready)} contenders at {a.rates} req/s offered, {a.openloop_duration} s, doc small")
    out = results.setdefault("openloop", [])
    db = Database(ctx, "small")
    client = os.path.join(ROOT, "bench/clients/openloop.py")
    try:
        for c in ready:
            try:
                proc, port, _ = start_ready(ctx, c, "small", db)
            except Exception as e:  # noqa: BLE001
                add_skip(results, c.id, f"openloop: did not start: {e}")
                progress.done += len(a.rates)
                continue
            try:
                run_wrk(ctx, port, c.endpoint, 50, 1, a.wrk_timeout, f"warmup-openloop-{c.id}")
                for rate in a.rates:
                    cmd = [PYTHON, client, "--port", str(port), "--path", c.endpoint, "--rate", str(rate),
                           "--duration", str(a.openloop_duration), "--connections", str(a.openloop_connections)]
                    p = procs.start(ctx.name("openloop", f"{c.id}-{rate}"), cmd, ctx.raw_dir, cpus=ctx.load_cpus)
                    try:
                        p.popen.wait(a.openloop_duration + 60)
                    except subprocess.TimeoutExpired:
                        pass
                    procs.stop(p)
                    try:
                        res = json.loads(open(p.stdout_path).read().strip().splitlines()[-1])
                    except (ValueError, IndexError):
                        add_skip(results, c.id, f"openloop {rate}/s: client failed: {p.log_tail()}")
                        progress.done += 1
                        continue
                    row = {"contender": c.id, "offered_rps": rate}
                    row.update(res)
                    out.append(row)
                    lat = res.get("latency_ms", {})
                    progress.line(f"openloop {c.id} {rate}/s: achieved {res.get('achieved_rps')}, "
                                  f"p50 {lat.get('p50')} p99 {lat.get('p99')} p99.9 {lat.get('p999')} ms, "
                                  f"errors {res.get('errors')}, client_lag_ms {res.get('client_max_lag_ms')}")
            finally:
                procs.stop(proc)
            report.save(ctx.out, results)
    finally:
        db.stop()


# ---------------------------------------------------------------------------------------------


def git_rev():
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    rev = r.stdout.strip() or None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return f"{rev}+dirty" if rev and dirty else rev


def machine_info(ctx):
    info = {"hostname": platform.node(), "kernel": platform.release(), "cpus": ctx.cores,
            "fd_limit": ctx.nofile, "somaxconn": ctx.somaxconn, "backlog": ctx.backlog}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)
        with open("/proc/meminfo") as f:
            info["mem_kb"] = int(f.readline().split()[1])
        with open("/proc/loadavg") as f:
            info["loadavg_at_start"] = f.read().split()[:3]
    except OSError:
        pass
    for tool, cmd in {"wrk": ["wrk", "-v"], "nginx": ["nginx", "-v"], "node": ["node", "--version"],
                      "go": ["go", "version"]}.items():
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            info[tool] = (r.stdout + r.stderr).strip().splitlines()[0][:80]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            info[tool] = None
    return info


# The sub-commands that measure, in the order `all` runs them. Another sub-command is one more
# entry here (and in ALL_STEPS if `all` should run it); parse_args takes its choices from here.
def cmd_decompose(ctx, results):
    decompose.cmd_decompose(ctx, results)  # looked up at call time: decompose imports harness too


STEPS = {"matrix": cmd_matrix, "decompose": cmd_decompose, "sweep": cmd_sweep, "sleep": cmd_sleep,
         "idle": cmd_idle, "openloop": cmd_openloop}
ALL_STEPS = ["matrix", "decompose", "sweep", "sleep", "idle", "openloop"]


def _names(text):
    return [x for x in text.split(",") if x]


def _ints(text):
    return [int(x) for x in text.split(",") if x]


def parse_args(argv):
    ids = [c.id for c in cont.all_contenders()]
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="matrix",
                   choices=list(STEPS) + ["all", "report"])
    p.add_argument("--full", action="store_true", help="the seed's 30 s runs (default: quick, ~15 min matrix)")
    p.add_argument("--ci", action="store_true",
                   help="short runs, 200/1000 connections, coroserve + nginx + /json; implies --allow-busy")
    p.add_argument("--contenders", type=_names, help=f"comma list of {','.join(ids)}")
    p.add_argument("--docs", type=_names, default=None, help="small,big")
    p.add_argument("--connections", type=_ints, default=None,
                   help="default 200,1000,5000")
    p.add_argument("--duration", type=int, help="seconds per wrk run")
    p.add_argument("--warmup", type=int, help="seconds of wrk warm-up per point (discarded)")
    p.add_argument("--reps", type=int, help="repetitions per point (median reported)")
    p.add_argument("--wrk-timeout", type=int, default=2, help="wrk --timeout, seconds (wrk's default, the seed's)")
    p.add_argument("--pause", type=float, default=0.3, help="seconds between runs")
    p.add_argument("--order", choices=["interleaved", "grouped"], default="interleaved",
                   help="matrix: interleaved (default): repetition by repetition, each connection count, every "
                        "contender in turn (backward on odd reps), each run on a freshly started server after a "
                        "full warm-up, so that drift spreads over all contenders; grouped: each contender's points "
                        "and reps back to back on one server (the old order)")
    p.add_argument("--mongo-uri", help="an external MongoDB instead of the stand-in (seeded with mongo-seed)")
    p.add_argument("--standin", help="stand-in binary (default build/release/bin/mongo-standin)")
    p.add_argument("--standin-threads", type=int, help="the stand-in's --threads")
    p.add_argument("--pinning", choices=sorted(LAYOUTS), default="split", help="CPU placement (README)")
    p.add_argument("--peer-processes", type=int,
                   help="processes of each multi-process peer (Node cluster, Tornado, gunicorn, uwsgi); default: "
                        "one per CPU the server is pinned to (1 in the split layout; README, 'Every peer at its "
                        "documented best')")
    p.add_argument("--coroserve-flag", action="append", default=[], metavar="NAME=VALUE",
                   help="override a coroserve flag, e.g. --coroserve-flag=--workers=16")
    p.add_argument("--out", help="results directory (default bench/results/<timestamp>)")
    p.add_argument("--no-build", action="store_true", help="skip install-deps and the build")
    p.add_argument("--bin-dir", help="where coroserve, mongo-standin and mongo-driver-load are (default "
                                     "build/release/bin; another preset's with --no-build)")
    p.add_argument("--allow-skip", action="store_true",
                   help="run the contenders that can run when some cannot (default: exit non-zero before "
                        "measuring; any contender or point lost during the run also makes the exit code 3)")
    p.add_argument("--allow-busy", action="store_true",
                   help="start even when the 1-min load average is above --max-load (results.md says so)")
    p.add_argument("--max-load", type=float, default=1.5,
                   help="highest 1-min load average at which a run may start (default 1.5)")
    p.add_argument("--load-wait", type=int, default=300,
                   help="seconds to wait for the load average to fall below --max-load before refusing")
    p.add_argument("--no-driver-load", action="store_true", help="skip the stand-in's driver-only find rate")
    p.add_argument("--nice", type=int, default=0,
                   help="scheduling priority for everything the harness starts (e.g. -10 as root on a "
                        "machine shared with builds); the same for every contender")
    p.add_argument("--lock-wait", type=int, default=1800,
                   help=f"seconds to wait for another bench/run on this machine ({LOCK_PATH})")
    p.add_argument("--decompose-contenders", type=_names,
                   help="decompose: contenders to take apart (default: every DB-backed one of --contenders)")
    p.add_argument("--decompose-processes", type=_ints, default=[1, 2],
                   help="decompose: process counts tried for each multi-process peer (default 1,2)")
    p.add_argument("--decompose-connections", type=int, default=200,
                   help="decompose: wrk connections, and finds in flight in the driver-only loops (default 200)")
    p.add_argument("--profile", action="store_true",
                   help="decompose: CPU profile of the Node peer's composite run (node --cpu-prof), top functions "
                        "by self time in results.md, .cpuprofile files under profiles/")
    p.add_argument("--latencies", type=_ints, default=[0, 1, 10])
    p.add_argument("--sweep-workers", type=_ints, default=[2, 8, 32, 128])
    p.add_argument("--sweep-peers", type=_names,
                   default=["tornado-motor", "node-express", "go-nethttp", "flask-gunicorn-gevent"])
    p.add_argument("--sweep-connections", type=int, default=200)
    p.add_argument("--sleep-duration", type=int, default=5)
    p.add_argument("--idle-connections", type=int, default=10000)
    p.add_argument("--idle-contenders", type=_names)
    p.add_argument("--rates", type=_ints, default=[500, 2000])
    p.add_argument("--openloop-duration", type=int, default=10)
    p.add_argument("--openloop-connections", type=int, default=64)
    p.add_argument("--openloop-contenders", type=_names)
    a = p.parse_args(argv)
    preset = FULL if a.full else (CI if a.ci else QUICK)
    a.duration = a.duration or preset["duration"]
    a.warmup = a.warmup if a.warmup is not None else preset["warmup"]
    a.reps = a.reps or preset["reps"]
    a.connections = a.connections or preset.get("connections", [200, 1000, 5000])
    a.contenders = a.contenders or preset.get("contenders", ids)
    a.docs = a.docs or ["small", "big"]
    if a.ci:
        # CI runners are shared VMs and the perf gate compares two checkouts measured back to back
        # on the same runner: the guard would only make the job flaky. The load is still recorded,
        # and results.md still says "busy" when it was above --max-load.
        a.allow_busy = True
    for cid in a.contenders:
        if cid not in ids:
            p.error(f"unknown contender {cid!r} (known: {', '.join(ids)})")
    for d in a.docs:
        if d not in DOCS:
            p.error(f"unknown doc {d!r} (small, big)")
    for n in a.connections:
        if not 1 <= n <= 10000:
            p.error("connections must be within 1..10000 (fd limit 20000 is shared by both ends' sockets)")
    if not 1 <= a.duration <= 600 or not 1 <= a.reps <= 20:
        p.error("--duration must be 1..600 s and --reps 1..20")
    return a


LOCK_PATH = "/tmp/coroserve-bench.lock"


def machine_lock(max_wait_s):
    """One bench/run at a time per machine: two runs pinning servers to the same core measure
    each other. Waits up to max_wait_s for another run to finish; returns (file, waited_s,
    got_it). The lock goes with the process."""
    import fcntl
    f = open(LOCK_PATH, "a+")
    t0 = time.monotonic()
    announced = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()} {' '.join(sys.argv)}\n")
            f.flush()
            return f, time.monotonic() - t0, True
        except OSError:
            if not announced:
                f.seek(0)
                log(f"== waiting (at most {max_wait_s} s) for another bench/run to finish: {f.read().strip()}")
                announced = True
            if time.monotonic() - t0 > max_wait_s:
                log("== warning: still locked; running anyway (results will be noisy)")
                return f, time.monotonic() - t0, False
            time.sleep(2)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "report":
        # Re-renders results.csv/md and the charts of an existing run from its results.json.
        if not args.out:
            log("bench/run report needs --out DIR (a results directory)")
            return 2
        with open(os.path.join(args.out, "results.json")) as f:
            results = json.load(f)
        try:
            report.save(args.out, results, charts=True)
        except report.ChartError as e:
            log(f"error: {e}")
            return 2
        log(f"== {args.out}/results.md")
        return 0
    procs.install_cleanup()
    try:
        return run(args, argv)
    except (SetupError, report.ChartError) as e:
        log(f"{stamp_now()} error: {e}")
        return 2


def run(args, argv):
    """Setup, the guard, the steps; returns the exit code (3 when something was skipped)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = os.path.abspath(args.out or os.path.join(ROOT, "bench/results", stamp))
    os.makedirs(out, exist_ok=True)
    t0 = time.monotonic()
    log(f"{stamp_now()} bench/run {args.command}: results in {out}")
    built = install_and_build(args)
    if not shutil.which("wrk"):
        raise SetupError("wrk is not installed (tools/install-deps.sh bench)")
    if not shutil.which("gnuplot"):
        raise SetupError("gnuplot is not installed: the charts need it (Debian gnuplot-nox; tools/install-deps.sh bench)")
    lock, waited, exclusive = machine_lock(args.lock_wait)
    if args.nice:
        # Every server, the stand-in, wrk and the clients inherit it: the same for all contenders.
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        except OSError as e:
            log(f"warning: --nice {args.nice}: {e}")
    ctx = Ctx(args, out)
    load_at_start = wait_until_quiet(args)
    results = {
        "meta": {
            "timestamp": stamp, "git_rev": git_rev(), "machine": machine_info(ctx),
            "duration_s": args.duration, "warmup_s": args.warmup, "reps": args.reps,
            "connections": args.connections, "docs": args.docs, "command": args.command, "order": args.order,
            "pinning": f"{args.pinning}: server on CPU {ctx.server_cpus or 'any'}, stand-in on CPU "
                       f"{ctx.db_cpus or 'any'}, wrk/clients on CPU {ctx.load_cpus or 'any'}",
            "wrk_timeout_s": args.wrk_timeout, "coroserve_flags": dict(cont.COROSERVE_BEST, **ctx.coroserve_flags),
            "database": args.mongo_uri and "external MongoDB" or "mongo-standin",
            "build": {k: v for k, v in built.items() if v}, "doc_bytes": {k: len(v) for k, v in ctx.doc_json.items()},
            "argv": sys.argv[1:] if argv is None else argv,
            "lock": {"waited_s": round(waited, 1), "exclusive": exclusive},
            "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "max_load": args.max_load, "loadavg_before_first_point": load_at_start,
            # True when the guard was overridden and the load was above --max-load at the start
            "busy": bool(args.allow_busy and load_at_start is not None and load_at_start > args.max_load),
            "allow_busy": args.allow_busy, "allow_skip": args.allow_skip,
        },
        "standin_driver_find_rate": None,
        "runs": [],
        "skipped": [],
    }
    if not args.no_driver_load and (args.mongo_uri or os.access(ctx.standin, os.X_OK)):
        log(f"{stamp_now()} measuring the stand-in's driver-only find rate (mongo-driver-load, 3 s)")
        rate, detail = driver_find_rate(ctx)
        results["standin_driver_find_rate"] = rate
        results["meta"]["driver_load"] = detail
        log(f"{stamp_now()} stand-in driver-only find rate: {rate} ops/s ({detail})")
    steps = {name: [fn] for name, fn in STEPS.items()}
    steps["all"] = [STEPS[name] for name in ALL_STEPS]
    failed = None
    try:
        for step in steps[args.command]:
            step(ctx, results)
    except SetupError as e:
        failed = e
    finally:
        results["meta"]["elapsed_s"] = round(time.monotonic() - t0, 1)
        results["meta"]["loadavg_at_end"] = loadavg()
        if failed:
            results["meta"]["error"] = str(failed)
        report.save(ctx.out, results, charts=True)
        procs.stop_all()
    if failed:
        raise failed
    log(f"{stamp_now()} done in {fmt_s(time.monotonic() - t0)}: {out}/results.md")
    if results["skipped"]:
        log(f"{stamp_now()} {len(results['skipped'])} contender(s) or point(s) skipped "
            f"({', '.join(sorted({s['contender'] for s in results['skipped']}))}); "
            f"see the top of results.md{' (--allow-skip: exit 0)' if args.allow_skip else ''}")
        return 0 if args.allow_skip else 3
    return 0
