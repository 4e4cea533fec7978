# Driver-only load for bench/run decompose: N concurrent find_one({}) on articles.articles
# through one pymongo MongoClient (the Flask peers' driver and pool settings), no HTTP, in
# gevent greenlets (monkey-patched first, as the gevent peers) or OS threads (uwsgi threaded).
# Usage: find_loop.py --mode gevent|threads --uri URI --concurrency N --seconds S --pool P
# Prints one JSON line: finds, errors, seconds, cpu_s (this process, measured window only).
import argparse
import sys

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("--mode", choices=["gevent", "threads"], required=True)
p.add_argument("--uri", default="mongodb://127.0.0.1:27017")
p.add_argument("--concurrency", type=int, default=200)
p.add_argument("--seconds", type=float, default=5)
p.add_argument("--warmup", type=float, default=1)
p.add_argument("--pool", type=int, default=100)
a = p.parse_args()
if a.concurrency < 1 or a.seconds <= 0 or a.pool < 1:
    p.error("--concurrency and --pool must be >= 1, --seconds > 0")

if a.mode == "gevent":
    from gevent import monkey

    monkey.patch_all()

import json  # noqa: E402
import resource  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from pymongo import MongoClient  # noqa: E402

articles = MongoClient(a.uri, maxPoolSize=a.pool).articles.articles
state = {"counting": False, "stop": False, "finds": 0, "errors": 0}
lock = threading.Lock()  # a gevent lock once patched


def loop():
    while not state["stop"]:
        try:
            ok = articles.find_one() is not None
        except Exception:  # noqa: BLE001 - counted, the loop goes on
            ok = False
        if state["counting"]:
            with lock:
                state["finds" if ok else "errors"] += 1


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


workers = [threading.Thread(target=loop, daemon=True) for _ in range(a.concurrency)]
for w in workers:
    w.start()
time.sleep(a.warmup)
state["counting"] = True
c0, t0 = cpu(), time.monotonic()
time.sleep(a.seconds)
state["counting"] = False
seconds, cpu_s = time.monotonic() - t0, cpu() - c0
state["stop"] = True
for w in workers:
    w.join(10)
print(json.dumps({"finds": state["finds"], "errors": state["errors"], "seconds": seconds, "cpu_s": cpu_s,
                  "finds_per_sec": state["finds"] / seconds}), flush=True)
sys.exit(1 if state["errors"] else 0)
