#!/usr/bin/python3
"""The cost of TLS and SCRAM per GET /mongo request (issue 13).

The TLS handshake and the SCRAM conversation happen once per pooled libmongoc connection,
so after warm-up a request should cost what it costs in plain mode plus the symmetric
encryption of its bytes. This measures coroserve alone (not the stand-in, not the client):

  instructions  valgrind --tool=cachegrind --cache-sim=no: coroserve's instruction count for
                N1 and for N2 requests over one keep-alive connection, each run from a fresh
                start; (I(N2) - I(N1)) / (N2 - N1) is the cost of one warm request, start-up
                and the handshakes cancel out. Valid on a loaded machine.
  cpu           coroserve's CPU time (utime + stime from /proc, 10 ms ticks) around N2 warm
                requests, without valgrind: only meaningful on a quiet machine, and with
                enough requests for the tick resolution (--n2 50000).

Usage: bench/tls_cost/tls_cost.py [--mode instructions|cpu] [--build-dir build/release]
                                  [--n1 200] [--n2 1200]
Prints one line per configuration (plain, tls+scram-sha-256, tls+scram-sha-1) and the
difference from plain."""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "bench-Pa55w0rd"


def start_standin(exe, certs, tls):
    args = [exe, "--port", "0", "--seed",
            f"articles.articles={ROOT}/bench/data/small_doc.json"]
    if tls:
        args += ["--tls-cert", f"{certs}/server.pem", "--tls-key", f"{certs}/server.key",
                 "--user", f"bench:{PASSWORD}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, int(proc.stdout.readline())


def uri(port, certs, mechanism):
    # A long heartbeat interval: monitoring traffic grows with the run's length, not with the
    # request count, and would not cancel out between the N1 and N2 runs.
    base = f"127.0.0.1:{port}/?heartbeatFrequencyMS=60000"
    if not mechanism:
        return "mongodb://" + base
    return (f"mongodb://bench:{PASSWORD}@{base}&tls=true&tlsCAFile={certs}/ca.pem"
            f"&authSource=admin&authMechanism={mechanism}")


def wait_port(proc, stderr_path, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(stderr_path) as f:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError("coroserve did not start: " + open(stderr_path).read()[-2000:])


def get_many(port, n):
    """n keep-alive GET /mongo on one connection; every answer must be a 200."""
    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        f = s.makefile("rb")
        for _ in range(n):
            s.sendall(b"GET /mongo HTTP/1.1\r\nHost: bench\r\n\r\n")
            status = f.readline()
            length = 0
            while True:
                line = f.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            f.read(length)
            if b" 200 " not in status:
                raise RuntimeError(f"GET /mongo answered {status!r}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def one_run(args, mongodb_uri, n, tmp):
    exe = f"{args.build_dir}/bin/coroserve"
    server = [exe, "--host", "127.0.0.1", "--port", "0", "--io-threads", "1", "--workers", "1",
              "--mongodb-uri", mongodb_uri, "--db-timeout-ms", "120000",
              "--server-selection-timeout-ms", "120000"]
    out = os.path.join(tmp, f"cachegrind.{n}")
    if args.mode == "instructions":
        server = ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                  f"--cachegrind-out-file={out}"] + server
    err_path = os.path.join(tmp, "stderr")
    with open(err_path, "w") as err:
        proc = subprocess.Popen(server, stdout=subprocess.DEVNULL, stderr=err)
    try:
        port = wait_port(proc, err_path)
        get_many(port, 20)  # warm-up: the pooled connection, its handshake and SCRAM
        before = cpu_ticks(proc.pid)
        t0 = time.time()
        get_many(port, n)
        ticks = cpu_ticks(proc.pid) - before
        wall = time.time() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    if args.mode == "cpu":
        return ticks * 1e6 / os.sysconf("SC_CLK_TCK"), wall
    with open(out) as f:
        m = re.search(r"^summary:\s+(\d+)", f.read(), re.M)
    return int(m.group(1)), wall


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["instructions", "cpu"], default="instructions")
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build/release"))
    p.add_argument("--n1", type=int, default=200)
    p.add_argument("--n2", type=int, default=1200)
    p.add_argument("--only", help="run only the configurations whose name contains this")
    args = p.parse_args()
    if args.n2 <= args.n1:
        p.error("--n2 must be larger than --n1")
    unit = "instructions" if args.mode == "instructions" else "CPU-us"
    with tempfile.TemporaryDirectory(prefix="tls-cost-") as tmp:
        certs = os.path.join(tmp, "certs")
        subprocess.run([f"{ROOT}/tests/support/make-test-certs.sh", certs], check=True)
        results = {}
        for name, tls, mech in [("plain", False, None),
                                ("tls+scram-sha-256", True, "SCRAM-SHA-256"),
                                ("tls+scram-sha-1", True, "SCRAM-SHA-1")]:
            if args.only and args.only not in name:
                continue
            standin, port = start_standin(f"{args.build_dir}/bin/mongo-standin", certs, tls)
            try:
                m = uri(port, certs, mech)
                if args.mode == "instructions":
                    c1, _ = one_run(args, m, args.n1, tmp)
                    c2, _ = one_run(args, m, args.n2, tmp)
                    per = (c2 - c1) / (args.n2 - args.n1)
                else:  # CPU time is read around the N2 requests only (after the warm-up)
                    c2, _ = one_run(args, m, args.n2, tmp)
                    per = c2 / args.n2
            finally:
                standin.terminate()
                standin.wait()
            results[name] = per
            extra = (f"  (+{per - results['plain']:.0f} vs plain)"
                     if name != "plain" and "plain" in results else "")
            print(f"{name:20s} {per:12.0f} {unit} per /mongo request{extra}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
