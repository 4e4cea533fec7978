"""bench/run end to end on the real binaries, briefly: coroserve (/mongo, against the real
stand-in), coroserve /json and nginx, 1 s per point. It must exit 0, skip nothing, write
results.json with every point answered, the cost table and real PNG charts. Then
`bench/run decompose` of coroserve: HTTP only, driver only (mongo-driver-load), composite.
Usage: bench_smoke.py BIN_DIR OUT_DIR. Exit 77 (skipped) when wrk, nginx or gnuplot is missing."""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    bin_dir, out = sys.argv[1], sys.argv[2]
    missing = [t for t in ("wrk", "nginx", "gnuplot") if not shutil.which(t)]
    if missing:
        print(f"skipped: {', '.join(missing)} not installed (tools/install-deps.sh bench)")
        return 77
    shutil.rmtree(out, ignore_errors=True)
    cmd = [os.path.join(ROOT, "bench/run"), "--no-build", "--bin-dir", bin_dir, "--allow-busy", "--lock-wait", "0",
           "--contenders", "coroserve,coroserve-json,nginx", "--docs", "small", "--connections", "20",
           "--duration", "1", "--warmup", "0", "--reps", "1", "--no-driver-load", "--out", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    print(r.stdout[-3000:], r.stderr[-2000:])
    assert r.returncode == 0, f"bench/run exited {r.returncode}"
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert results["skipped"] == [], results["skipped"]
    points = {(x["contender"], x["connections"]): x for x in results["runs"]}
    assert set(points) == {("coroserve", 20), ("coroserve-json", 20), ("nginx", 20)}, sorted(points)
    for key, x in points.items():
        assert x["rps_ok"] > 0, (key, x["rps_ok"])
        assert x["non2xx"] == 0, (key, x["non2xx"])
        rep = x["reps"][0]
        assert rep["cpu_s"] is not None and rep["ctx_switches"] is not None, (key, rep)
    assert points[("coroserve", 20)]["reps"][0]["standin_cpu_s"] is not None
    with open(os.path.join(out, "results.md")) as f:
        md = f.read()
    assert "Nothing skipped" in md.splitlines()[4] or "Nothing skipped" in md.splitlines()[2], md[:500]
    assert "## Cost per request" in md
    for name in ("matrix_small.png", "latency.png"):
        with open(os.path.join(out, name), "rb") as f:
            data = f.read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000, (name, len(data))
    dec_out = out + "-decompose"
    shutil.rmtree(dec_out, ignore_errors=True)
    cmd = [os.path.join(ROOT, "bench/run"), "decompose", "--no-build", "--bin-dir", bin_dir, "--allow-busy",
           "--lock-wait", "0", "--contenders", "coroserve", "--decompose-connections", "20", "--duration", "1",
           "--warmup", "0", "--no-driver-load", "--out", dec_out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    print(r.stdout[-2000:], r.stderr[-2000:])
    assert r.returncode == 0, f"bench/run decompose exited {r.returncode}"
    with open(os.path.join(dec_out, "results.json")) as f:
        rows = json.load(f)["decompose"]
    assert [x["contender"] for x in rows] == ["coroserve"], rows
    row = rows[0]
    for part in ("http", "driver", "composite"):
        assert row[part]["rps_ok"] > 0 and row[part]["cpu_us"] > 0, (part, row[part])
    assert row["predicted_rps"] < min(row["http"]["rps_ok"], row["driver"]["rps_ok"]), row
    assert os.path.getsize(os.path.join(dec_out, "decompose.png")) > 10000
    print("bench smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
