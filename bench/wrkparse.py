"""Pure parsing of wrk's text output (wrk 4.1 with --latency) and the median helper.

Kept free of I/O so bench/test_wrkparse.py can check it against real outputs captured on
this machine (bench/fixtures/)."""
import re
import statistics

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
_DURATION = r"([0-9.]+)(us|ms|s|m|h)"


def duration_ms(text):
    """'1.63ms' -> 1.63, '11.58s' -> 11580.0, '89.00us' -> 0.089."""
    m = re.fullmatch(_DURATION, text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse(text):
    """Returns a dict: requests, duration_s, rps, rps_ok, latency_ms {avg, stdev, p50, p75,
    p90, p99, max}, errors {connect, read, write, timeout}, non2xx. Raises ValueError when
    the output has no summary (wrk failed)."""
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h),", text, re.M)
    if not m:
        raise ValueError("wrk output has no 'N requests in T' line")
    requests = int(m.group(1))
    duration_s = duration_ms(m.group(2) + m.group(3)) / 1000.0

    latency = {"avg": None, "stdev": None, "max": None, "p50": None, "p75": None, "p90": None, "p99": None}
    m = re.search(rf"^\s*Latency\s+{_DURATION}\s+{_DURATION}\s+{_DURATION}", text, re.M)
    if m:
        latency["avg"] = duration_ms(m.group(1) + m.group(2))
        latency["stdev"] = duration_ms(m.group(3) + m.group(4))
        latency["max"] = duration_ms(m.group(5) + m.group(6))
    for pct, value, unit in re.findall(rf"^\s*(50|75|90|99)%\s+{_DURATION}\s*$", text, re.M):
        latency["p" + pct] = duration_ms(value + unit)
    if latency["max"] == 0.0:
        # Every response came after --timeout: wrk kept none in its histogram and prints
        # zeros, which are not latencies.
        latency = {k: None for k in latency}

    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))

    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    non2xx = int(m.group(1)) if m else 0

    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    rps = float(m.group(1)) if m else (requests / duration_s if duration_s else 0.0)
    ok = max(requests - non2xx, 0)
    return {
        "requests": requests,
        "duration_s": duration_s,
        "rps": rps,
        # wrk counts non-2xx/3xx responses in Requests/sec: a 503 is not a success.
        "rps_ok": ok / duration_s if duration_s else 0.0,
        "latency_ms": latency,
        "errors": errors,
        "non2xx": non2xx,
    }


def median(values):
    """Median of the values that are not None; None if there are none."""
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None



def summarize(reps):
    """Folds repetitions into one matrix point: every number is the per-field median, and
    'reps' keeps each repetition. Errors and non-2xx are medians too (reported per run)."""
    if not reps:
        raise ValueError("no repetitions")
    out = {
        "rps_ok": median([r["rps_ok"] for r in reps]),
        "rps": median([r["rps"] for r in reps]),
        "latency_ms": {k: median([r["latency_ms"].get(k) for r in reps])
                       for k in ("p50", "p90", "p99", "max")},
        "errors": {k: median([r["errors"][k] for r in reps]) for k in ("connect", "read", "write", "timeout")},
        "non2xx": median([r["non2xx"] for r in reps]),
        "rss_peak_kb": median([r.get("rss_peak_kb") for r in reps]),
        "cpu_s": median([r.get("cpu_s") for r in reps]),
        "reps": reps,
    }
    return out
