# Driver-only load for bench/run decompose: N concurrent find_one({}) on articles.articles
# through one Motor client on Tornado's IOLoop (the Tornado peer's driver and pool settings),
# no HTTP. Usage: find_loop.py --uri URI --concurrency N --seconds S --pool P [--warmup W]
# Prints one JSON line: finds, errors, seconds, cpu_s (this process, measured window only).
import argparse
import json
import resource
import sys
import time

import tornado.ioloop
from motor.motor_tornado import MotorClient

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("--uri", default="mongodb://127.0.0.1:27017")
p.add_argument("--concurrency", type=int, default=200)
p.add_argument("--seconds", type=float, default=5)
p.add_argument("--warmup", type=float, default=1)
p.add_argument("--pool", type=int, default=100)
a = p.parse_args()
if a.concurrency < 1 or a.seconds <= 0 or a.pool < 1:
    p.error("--concurrency and --pool must be >= 1, --seconds > 0")


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main():
    import asyncio

    articles = MotorClient(a.uri, maxPoolSize=a.pool).articles.articles
    state = {"counting": False, "stop": False, "finds": 0, "errors": 0}

    async def loop():
        while not state["stop"]:
            try:
                ok = await articles.find_one() is not None
            except Exception:  # noqa: BLE001 - counted, the loop goes on
                ok = False
            if state["counting"]:
                state["finds" if ok else "errors"] += 1

    tasks = [asyncio.ensure_future(loop()) for _ in range(a.concurrency)]
    await asyncio.sleep(a.warmup)
    state["counting"] = True
    c0, t0 = cpu(), time.monotonic()
    await asyncio.sleep(a.seconds)
    state["counting"] = False
    seconds, cpu_s = time.monotonic() - t0, cpu() - c0
    state["stop"] = True
    await asyncio.gather(*tasks)
    print(json.dumps({"finds": state["finds"], "errors": state["errors"], "seconds": seconds, "cpu_s": cpu_s,
                      "finds_per_sec": state["finds"] / seconds}), flush=True)
    return 1 if state["errors"] else 0


sys.exit(tornado.ioloop.IOLoop.current().run_sync(main))
