"""bench/run decompose: each DB-backed contender taken apart on the matrix's core layout.

For every contender (and, for multi-process peers, every process count of
--decompose-processes) it measures, small doc, --decompose-connections in flight:
  (a) HTTP only: the same server answering its constant-JSON route (/json), wrk;
  (b) driver only: find_one loops in the contender's language and driver, with its pool and
      concurrency, pinned where the server runs (bench/peers/<peer>/find_loop.*,
      mongo-driver-load for coroserve), no HTTP;
  (c) the composite /mongo, wrk;
each with CPU-us per request, and the prediction 1/(1/a + 1/b) beside (c): on one core the
time of a request is its HTTP part plus its driver part. --profile adds, for the Node peer, a
separate composite run under `node --cpu-prof` (the profiler's sampling thread would skew the
measured (c)), summarised by self time.
"""
import contextlib
import json
import os
import subprocess
import time

import contenders as cont
import harness
import procs


def prediction(a, b):
    """1/(1/a + 1/b): the composite rate if the HTTP part and the driver part add up."""
    if not a or not b:
        return None
    return 1.0 / (1.0 / a + 1.0 / b)


def per_request_us(cpu_s, n):
    return None if cpu_s is None or not n else cpu_s * 1e6 / n


def run_http(ctx, c, port, path, n, label, db_sid=None, sids=()):
    """One wrk point (warm-up, then --duration): rate, CPU-us per request, switches."""
    a = ctx.args
    if a.warmup:
        harness.run_wrk(ctx, port, path, n, a.warmup, a.wrk_timeout, f"warmup-decompose-{label}")
    rep = harness.run_wrk(ctx, port, path, n, a.duration, a.wrk_timeout, f"decompose-{label}", sids=sids,
                          db_sid=db_sid)
    answered = rep["requests"]
    return {"rps_ok": rep["rps_ok"], "requests": answered, "errors": sum(rep["errors"].values()),
            "non2xx": rep["non2xx"], "p99_ms": rep["latency_ms"]["p99"],
            "cpu_us": per_request_us(rep["cpu_s"], answered),
            "db_cpu_us": per_request_us(rep.get("standin_cpu_s"), answered),
            "ctx_switches": None if rep.get("ctx_switches") is None or not answered
            else rep["ctx_switches"] / answered,
            "loadavg_before": rep.get("loadavg_before"), "raw": rep["raw"]}


def run_loops(ctx, c, db, n, extra, label):
    """(b): the contender's find_one loops, one process per server process, pinned like the
    server; rate summed, CPU from each loop's own measured window (else sampled)."""
    loops = c.find_loops(ctx, db.uri, n, extra)
    started = []
    db_sampler = procs.TreeSampler([db.proc.pid] if db.proc else [])
    with db_sampler:
        for i, (cmd, cwd) in enumerate(loops):
            started.append(procs.start(ctx.name("findloop", f"{label}-{i}"), cmd, ctx.raw_dir,
                                       cpus=ctx.server_cpus, cwd=cwd))
        sampler = procs.TreeSampler([p.pid for p in started])
        with sampler:
            limit = time.monotonic() + ctx.args.duration + ctx.args.warmup + 60
            for p in started:
                try:
                    p.popen.wait(max(limit - time.monotonic(), 1))
                except subprocess.TimeoutExpired:
                    pass
    finds, cpu_s, errors, seconds, self_cpu = 0, 0.0, 0, 0.0, True
    for p in started:
        alive = p.alive()
        procs.stop(p)
        try:
            with open(p.stdout_path) as f:
                out = json.loads(f.read().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            raise RuntimeError(f"find loop {p.name} gave no result{' (timed out)' if alive else ''}: "
                               f"{p.log_tail()}")
        finds += out["finds"]
        errors += out.get("errors", 0) + out.get("empty", 0)
        seconds = max(seconds, out["seconds"])
        if "cpu_s" in out:
            cpu_s += out["cpu_s"]
        else:
            self_cpu = False
    if not self_cpu:  # mongo-driver-load: its whole run, start-up included, sampled from /proc
        cpu_s = sampler.cpu_s
    return {"rps_ok": finds / seconds if seconds else 0.0, "finds": finds, "errors": errors,
            "processes": len(started), "concurrency_per_process": _concurrency(loops[0][0]),
            "cpu_us": per_request_us(cpu_s, finds), "cpu_measured": "own window" if self_cpu else "/proc, whole run",
            "db_cpu_us": per_request_us(db_sampler.cpu_s, finds) if db.proc else None,
            "ctx_switches": sampler.switches / finds if finds else None}


def _concurrency(cmd):
    for flag in ("--concurrency", "--threads"):
        if flag in cmd:
            return int(cmd[cmd.index(flag) + 1])
    return None


def summarize_profile(path, top=15):
    """The top functions by self time of a V8 .cpuprofile: [{function, url, self_pct}]."""
    with open(path) as f:
        prof = json.load(f)
    nodes = {n["id"]: n for n in prof["nodes"]}
    hits = {}
    deltas = prof.get("timeDeltas") or [1] * len(prof.get("samples", []))
    for node_id, dt in zip(prof.get("samples", []), deltas):
        hits[node_id] = hits.get(node_id, 0) + max(dt, 0)
    by_fn = {}
    for node_id, t in hits.items():
        cf = nodes[node_id]["callFrame"]
        key = (cf.get("functionName") or "(anonymous)", os.path.basename(cf.get("url", "")) or cf.get("url", ""))
        by_fn[key] = by_fn.get(key, 0) + t
    total = sum(by_fn.values()) or 1
    rows = sorted(by_fn.items(), key=lambda kv: -kv[1])[:top]
    return [{"function": fn, "url": url, "self_pct": round(100.0 * t / total, 1)} for (fn, url), t in rows]


def cmd_decompose(ctx, results):
    a = ctx.args
    table = cont.by_id()
    ids = a.decompose_contenders or [cid for cid in a.contenders if table[cid].needs_db]
    ready = harness.prepare_contenders(ctx, ids, results, None)
    cases = []
    for c in ready:
        counts = a.decompose_processes if c.multi_process else [None]
        cases += [(c, n) for n in counts]
    n = a.decompose_connections
    progress = harness.Progress(len(cases) * 3, 2 * (a.duration + a.warmup) + 3)
    harness.log(f"== decompose: {len(cases)} cases x (HTTP only, driver only, composite), c={n}, doc small, "
                f"{a.duration} s each (+{a.warmup} s warm-up)")
    out = results.setdefault("decompose", [])
    db = harness.Database(ctx, "small")
    try:
        for c, nproc in cases:
            extra = {"processes": nproc} if nproc else {}
            label = c.id + (f"-p{nproc}" if nproc else "")
            row = {"contender": c.id, "processes": c.processes(ctx, extra), "connections": n,
                   "layout": a.pinning}
            try:
                # (b) first, while no server runs; a contender without a driver-only loop (a new
                # one that did not define find_loops yet) gets (a) and (c) and no prediction.
                if c.find_loops(ctx, db.uri, n, extra):
                    harness.log(f"{harness.stamp_now()} {label}: driver only (find_one loops)")
                    row["driver"] = run_loops(ctx, c, db, n, extra, label)
                    progress.line(f"{label} driver only: {row['driver']['rps_ok']:,.0f} finds/s, "
                                  f"{_us(row['driver']['cpu_us'])} CPU-us/find")
                else:
                    row["driver"] = None
                    progress.line(f"{label} driver only: no find_loops() for this contender (contenders.py)")
                if c.json_endpoint:
                    # (a) and (c) each on a freshly started server: both start from the same state
                    with started(ctx, c, db, dict(extra), label) as (proc, port):
                        row["http"] = run_http(ctx, c, port, c.json_endpoint, n, f"{label}-json", sids=[proc.pid])
                    progress.line(f"{label} HTTP only ({c.json_endpoint}): {row['http']['rps_ok']:,.0f} req/s, "
                                  f"{_us(row['http']['cpu_us'])} CPU-us/req")
                else:
                    progress.done += 1
                with started(ctx, c, db, dict(extra), label) as (proc, port):
                    row["composite"] = run_http(ctx, c, port, c.endpoint, n, f"{label}-mongo", sids=[proc.pid],
                                                db_sid=db.proc.pid if db.proc else None)
                progress.line(f"{label} composite ({c.endpoint}): {row['composite']['rps_ok']:,.0f} req/s, "
                              f"{_us(row['composite']['cpu_us'])} CPU-us/req")
                if a.profile and c.id == "node-express":
                    # A separate run: the profiler's sampling thread (1 kHz) would add its own CPU and
                    # context switches to the measured (c).
                    prof_dir = os.path.join(ctx.out, "profiles", label)
                    os.makedirs(prof_dir, exist_ok=True)
                    extra_p = dict(extra, node_flags=["--cpu-prof", f"--cpu-prof-dir={prof_dir}"])
                    with started(ctx, c, db, extra_p, label + " (profiled)") as (proc, port):
                        row["profiled_rps_ok"] = run_http(ctx, c, port, c.endpoint, n, f"{label}-mongo-profiled",
                                                          sids=[proc.pid])["rps_ok"]
                    profs = sorted(os.path.join(prof_dir, f) for f in os.listdir(prof_dir) if f.endswith(".cpuprofile"))
                    row["profiles"] = [{"file": os.path.relpath(p, ctx.out), "top": summarize_profile(p)}
                                       for p in profs]
                    harness.log(f"   {len(profs)} Node CPU profile(s) of a separate composite run in {prof_dir}")
                a_rate = row.get("http", {}).get("rps_ok")
                row["predicted_rps"] = prediction(a_rate, (row["driver"] or {}).get("rps_ok"))
                if row["predicted_rps"]:
                    row["composite_vs_predicted"] = row["composite"]["rps_ok"] / row["predicted_rps"]
            except Exception as e:  # noqa: BLE001 - one broken case must not stop the others
                harness.add_skip(results, label, f"decompose: {e}")
                row["error"] = str(e)
            out.append(row)
            harness.report.save(ctx.out, results)
    finally:
        db.stop()


@contextlib.contextmanager
def started(ctx, c, db, extra, label):
    harness.log(f"{harness.stamp_now()} {label}: starting the server")
    proc, port, _ = harness.start_ready(ctx, c, "small", db, extra)
    try:
        yield proc, port
    finally:
        # SIGTERM, and time for every worker to exit by itself: node writes its .cpuprofile then
        procs.stop(proc, timeout=15, wait_group=True)


def _us(x):
    return "-" if x is None else f"{x:,.1f}"
