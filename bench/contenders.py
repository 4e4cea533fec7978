"""The contenders: how each one is prepared (built, installed) and started.

Every server binds 127.0.0.1, gets the same listen backlog and file-descriptor limit, and
(when it has a pool) the seed's pool sizing: the seed gave 6000 pooled connections in all
to its 4-core server (1500 per process), so here each process gets 6000 / processes.
Process counts follow the seed's rule "one per core", with this machine's core count."""
import os
import shutil
import subprocess

import procs

# coroserve at its best configuration on this 2-core machine (see bench/README.md,
# "Choosing coroserve's flags"): the flags bench/run passes for the `coroserve` and
# `coroserve-json` contenders. Override one with --coroserve-flag NAME=VALUE.
COROSERVE_BEST = {
    "--io-threads": "1",   # one I/O thread: the other core goes to the stand-in and wrk
    "--workers": "8",      # blocking pool threads for libmongoc finds (see the latency sweep)
    "--queue": "10000",    # bounded queue of pool jobs; beyond it the server answers 503
    "--demo-endpoints": "true",  # /sleep and /sleep/async for `bench/run sleep` (off by default)
}

TOTAL_POOL = 6000  # the seed's total MongoDB pool across all server processes

# The seed's names for the contenders, for the reference columns.
SEED_NAMES = {
    "node-express": "Node",
    "tornado-motor": "Tornado",
    "flask-gunicorn-gevent": "gunicorn+gevent",
    "flask-uwsgi-gevent": "uwsgi+gevent",
    "flask-uwsgi-threaded": "uwsgi threaded",
}


class Skip(Exception):
    """A contender that cannot run here; the message is the reason recorded in `skipped`."""


class Contender:
    id = None
    endpoint = "/mongo"
    needs_db = True
    label = None
    prepare_note = ""  # what prepare() does when it takes a while, for the progress line
    json_endpoint = "/json"  # constant JSON in the same framework (bench/run decompose); None: none
    multi_process = False  # runs `processes` server processes (default ctx.peer_processes)

    def processes(self, ctx, extra=None):
        """Server processes this contender runs: extra['processes'], else --peer-processes,
        else one per CPU the server may use (bench/README.md, "Every peer at its documented best")."""
        if not self.multi_process:
            return 1
        return int((extra or {}).get("processes") or ctx.peer_processes)

    def find_loops(self, ctx, mongo_uri, concurrency, extra=None):
        """The driver-only load for decompose: [(cmd, cwd)], one per server process, each a
        find_one loop in the contender's language and driver with its pool and its share of
        `concurrency` in flight. None when the contender has no database."""
        return None

    def prepare(self, ctx):
        """Builds or installs what the contender needs; raises Skip when it cannot run."""

    def start(self, ctx, doc, mongo_uri, extra=None):
        """Starts the server; returns (Proc, port) once it is listening (not yet ready)."""
        raise NotImplementedError

    def _loop_args(self, ctx, mongo_uri, concurrency, processes, per_process_cap=None):
        """--uri/--concurrency/--seconds/--pool/--warmup for each of `processes` loop processes."""
        share = max(concurrency // processes, 1)
        if per_process_cap:
            share = min(share, per_process_cap)
        return ["--uri", mongo_uri, "--concurrency", str(share), "--seconds", str(ctx.args.duration),
                "--warmup", str(max(ctx.args.warmup, 1)), "--pool", str(max(TOTAL_POOL // processes, 1))]

    def _env(self, ctx, mongo_uri, processes):
        return {
            "MONGODB_URI": mongo_uri or "",
            "PEER_POOL_SIZE": str(max(TOTAL_POOL // processes, 1)),
            "PEER_BACKLOG": str(ctx.backlog),
        }


class Coroserve(Contender):
    id = "coroserve"
    label = "coroserve (ours)"
    start_timeout = 20  # seconds until the server prints its port

    def __init__(self, cid="coroserve", endpoint="/mongo"):
        self.id, self.endpoint = cid, endpoint
        if endpoint == "/json":
            self.label, self.needs_db = "coroserve /json (constant JSON, no DB query)", False
            self.json_endpoint = None

    def runner(self, ctx):
        """The wrapper the server and its loop run under: none, on the host."""
        return []

    def find_loops(self, ctx, mongo_uri, concurrency, extra=None):
        if not self.needs_db:
            return None
        # libmongoc through one client pool, as many threads as coroserve has pool workers
        # (the finds coroserve can have in flight), no HTTP.
        flags = dict(COROSERVE_BEST, **ctx.coroserve_flags, **(extra or {}))
        return [(self.runner(ctx) + [self.loop_binary(ctx), "--uri", mongo_uri, "--threads", str(flags["--workers"]),
                                     "--seconds", str(ctx.args.duration)], None)]

    def binary(self, ctx):
        return os.path.join(ctx.bin_dir, "coroserve")

    def loop_binary(self, ctx):
        return os.path.join(ctx.bin_dir, "mongo-driver-load")

    def prepare(self, ctx):
        if not os.access(self.binary(ctx), os.X_OK):
            raise Skip(f"{self.binary(ctx)} was not built (the server's sources are not in the tree yet?)")

    def flags(self, ctx, extra=None):
        flags = dict(COROSERVE_BEST)
        flags.update(ctx.coroserve_flags)
        flags.update(extra or {})
        return [f"{k}={v}" for k, v in flags.items()]

    def start(self, ctx, doc, mongo_uri, extra=None):
        cmd = self.runner(ctx) + [self.binary(ctx), "--host", "127.0.0.1", "--port", "0",
                                  "--mongodb-uri", mongo_uri or "mongodb://127.0.0.1:9"] + self.flags(ctx, extra)
        p = procs.start(ctx.name(self.id, doc), cmd, ctx.log_dir, cpus=ctx.server_cpus)
        return p, int(p.first_line(self.start_timeout))


class Nginx(Contender):
    id = "nginx"
    label = "nginx static file (no DB)"
    needs_db = False
    json_endpoint = None

    def prepare(self, ctx):
        if not shutil.which("nginx"):
            raise Skip("nginx is not installed (Debian nginx-light)")

    def start(self, ctx, doc, mongo_uri, extra=None):
        d = os.path.join(ctx.out, "nginx", doc)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "doc.json"), "w") as f:
            f.write(ctx.doc_json[doc])
        port = procs.free_port()
        with open(os.path.join(ctx.root, "bench/peers/nginx/nginx.conf.in")) as f:
            conf = f.read()
        for key, value in {"WORKERS": ctx.cores, "NOFILE": ctx.nofile, "DIR": d, "PORT": port,
                           "WORKER_CONNECTIONS": ctx.nofile // 2, "BACKLOG": ctx.backlog}.items():
            conf = conf.replace(f"@{key}@", str(value))
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(conf)
        os.chmod(d, 0o755)
        p = procs.start(ctx.name(self.id, doc), ["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf")],
                        ctx.log_dir, cpus=ctx.server_cpus)
        return p, port


FLASK_DIR = "bench/peers/flask"


class FlaskUwsgi(Contender):
    """Flask under uwsgi. The seed's two rows bind the workers with --http-socket (no
    keep-alive: every answer closes the connection). router=True is uwsgi at its documented
    best for serving HTTP itself: its HTTP router (--http, a separate non-blocking process that
    the docs recommend in front of the workers when uwsgi faces clients directly) with
    --http-keepalive, forwarding to gevent workers over the uwsgi protocol."""

    multi_process = True

    def __init__(self, gevent, router=False):
        self.gevent, self.router = gevent, router
        if router:
            self.id, self.label = "flask-uwsgi-gevent-keepalive", "Flask + uwsgi HTTP router (keep-alive) + gevent"
        else:
            self.id = "flask-uwsgi-gevent" if gevent else "flask-uwsgi-threaded"
            self.label = "Flask + uwsgi + gevent" if gevent else "Flask + uwsgi threaded"

    def plugins(self):
        return ["python3"] + (["gevent_python3"] if self.gevent else []) + (["http"] if self.router else [])

    def prepare(self, ctx):
        if not shutil.which("uwsgi"):
            raise Skip("uwsgi is not installed")
        plugins = "/usr/lib/uwsgi/plugins"
        for name in self.plugins():
            so = f"{name}_plugin.so"
            if not os.path.exists(os.path.join(plugins, so)):
                raise Skip(f"uwsgi plugin {so} missing (uwsgi-plugin-python3 / uwsgi-plugin-gevent-python3 / "
                           "uwsgi-core for http)")

    def start(self, ctx, doc, mongo_uri, extra=None):
        extra = extra or {}
        port = procs.free_port()
        # The seed: `uwsgi --processes 4 --threads 1 --http-socket :5000` (threaded) and
        # `uwsgi [--processes 4] --gevent 5000 --http-socket :5000`; processes = cores here.
        processes = self.processes(ctx, extra)
        if self.router:
            # The router keeps the client connections open (--http-keepalive needs a
            # Content-Length in every answer: Flask sets it) and talks to the workers over a
            # socket uwsgi creates itself.
            bind = ["--http", f"127.0.0.1:{port}", "--http-keepalive", "--http-timeout", "60"]
        else:
            bind = ["--http-socket", f"127.0.0.1:{port}"]
        cmd = ["uwsgi", "--plugins", ",".join(self.plugins())] + bind + [
               "--wsgi-file", "app.py", "--callable", "app",
               "--processes", str(processes), "--master", "--die-on-term",
               "--listen", str(ctx.backlog), "--max-fd", str(ctx.nofile),
               "--disable-logging", "--need-app"]
        env = self._env(ctx, mongo_uri, processes)
        if self.gevent:
            cmd += ["--gevent", "5000"]
            env["PEER_GEVENT"] = "1"
        else:
            cmd += ["--threads", str(extra.get("threads", 1))]
        p = procs.start(ctx.name(self.id, doc), cmd, ctx.log_dir, cpus=ctx.server_cpus, env=env,
                        cwd=os.path.join(ctx.root, FLASK_DIR))
        return p, port

    def find_loops(self, ctx, mongo_uri, concurrency, extra=None):
        n = self.processes(ctx, extra)
        if self.gevent:  # --gevent 5000: at most 5000 greenlets per worker
            args = ["--mode", "gevent"] + self._loop_args(ctx, mongo_uri, concurrency, n, 5000)
        else:  # one request at a time per thread: `threads` finds in flight per process
            threads = int((extra or {}).get("threads", 1))
            args = ["--mode", "threads"] + self._loop_args(ctx, mongo_uri, n * threads, n, threads)
        return [([ctx.python, "find_loop.py"] + args, os.path.join(ctx.root, FLASK_DIR))] * n


class FlaskGunicorn(Contender):
    id = "flask-gunicorn-gevent"
    label = "Flask + gunicorn + gevent"
    multi_process = True

    def prepare(self, ctx):
        if not shutil.which("gunicorn"):
            raise Skip("gunicorn is not installed")

    def start(self, ctx, doc, mongo_uri, extra=None):
        port = procs.free_port()
        # The seed: `gunicorn -b :5000 -k gevent -w 4 --worker-connections 5000 app:app`.
        n = self.processes(ctx, extra)
        cmd = ["gunicorn", "-b", f"127.0.0.1:{port}", "-k", "gevent", "-w", str(n),
               "--worker-connections", "5000", "--backlog", str(ctx.backlog),
               "--graceful-timeout", "2", "app:app"]
        env = self._env(ctx, mongo_uri, n)
        env["PEER_GEVENT"] = "1"
        p = procs.start(ctx.name(self.id, doc), cmd, ctx.log_dir, cpus=ctx.server_cpus, env=env,
                        cwd=os.path.join(ctx.root, FLASK_DIR))
        return p, port

    def find_loops(self, ctx, mongo_uri, concurrency, extra=None):
        n = self.processes(ctx, extra)
        args = ["--mode", "gevent"] + self._loop_args(ctx, mongo_uri, concurrency, n, 5000)
        return [([ctx.python, "find_loop.py"] + args, os.path.join(ctx.root, FLASK_DIR))] * n


class TornadoMotor(Contender):
    id = "tornado-motor"
    label = "Tornado + Motor"
    multi_process = True

    def prepare(self, ctx):
        r = subprocess.run([ctx.python, "-c", "import tornado, motor"], capture_output=True, text=True)
        if r.returncode:
            raise Skip(f"tornado/motor not importable: {r.stderr.strip().splitlines()[-1:]}")

    def start(self, ctx, doc, mongo_uri, extra=None):
        port = procs.free_port()
        n = self.processes(ctx, extra)
        cmd = [ctx.python, "app.py", str(port), str(n)]
        p = procs.start(ctx.name(self.id, doc), cmd, ctx.log_dir, cpus=ctx.server_cpus,
                        env=self._env(ctx, mongo_uri, n),
                        cwd=os.path.join(ctx.root, "bench/peers/tornado"))
        return p, port

    def find_loops(self, ctx, mongo_uri, concurrency, extra=None):
        n = self.processes(ctx, extra)
        args = self._loop_args(ctx, mongo_uri, concurrency, n)
        return [([ctx.python, "find_loop.py"] + args, os.path.join(ctx.root, "bench/peers/tornado"))] * n


class NodeExpress(Contender):
    id = "node-express"
    label = "Node.js cluster + express + mongodb"
    dir = "bench/peers/node"
    prepare_note = "npm ci"
    multi_process = True

    def prepare(self, ctx):
        if not shutil.which("node") or not shutil.which("npm"):
            raise Skip("node/npm are not installed")
        d = os.path.join(ctx.root, self.dir)
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=d,
                           capture_output=True, text=True, timeout=300)
        if r.returncode:
            raise Skip(f"npm ci failed in {self.dir}: {r.stderr.strip()[-300:]}")

    def start(self, ctx, doc, mongo_uri, extra=None):
        port = procs.free_port()
        n = self.processes(ctx, extra)
        env = self._env(ctx, mongo_uri, n)
        # NODE_ENV=production: Express's production best practices page asks for it first.
        env.update({"PORT": str(port), "PEER_WORKERS": str(n), "NODE_ENV": "production"})
        node = ["node"] + list((extra or {}).get("node_flags", []))
        p = procs.start(ctx.name(self.id, doc), node + ["app.js"], ctx.log_dir, cpus=ctx.server_cpus,
                        env=env, cwd=os.path.join(ctx.root, self.dir))
        return p, port

    def find_loops(self, ctx, mongo_uri, concurrency, extra=None):
        n = self.processes(ctx, extra)
        args = self._loop_args(ctx, mongo_uri, concurrency, n)
        return [(["node", "find_loop.js"] + args, os.path.join(ctx.root, self.dir))] * n


class GoNetHttp(Contender):
    id = "go-nethttp"
    label = "Go net/http + mongo-go-driver"
    prepare_note = "go build"

    def binary(self, ctx):
        return os.path.join(ctx.peers_build, "peer-go")

    def loop_binary(self, ctx):
        return os.path.join(ctx.peers_build, "peer-go-findloop")

    def prepare(self, ctx):
        if not shutil.which("go"):
            raise Skip("go is not installed (golang-go)")
        os.makedirs(ctx.peers_build, exist_ok=True)
        env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="",
                   GOCACHE=os.path.join(ctx.peers_build, "gocache"))
        for out, sub in ((self.binary(ctx), "."), (self.loop_binary(ctx), "./findloop")):
            r = subprocess.run(["go", "build", "-o", out, sub], env=env,
                               cwd=os.path.join(ctx.root, "bench/peers/go"), capture_output=True, text=True,
                               timeout=600)
            if r.returncode:
                raise Skip(f"go build {sub} failed: {r.stderr.strip()[-300:]}")

    def start(self, ctx, doc, mongo_uri, extra=None):
        # GOMAXPROCS stays Go's default: the number of CPUs the process may run on.
        p = procs.start(ctx.name(self.id, doc), [self.binary(ctx), "-port", "0"], ctx.log_dir,
                        cpus=ctx.server_cpus, env=self._env(ctx, mongo_uri, 1))
        return p, int(p.first_line(20))

    def find_loops(self, ctx, mongo_uri, concurrency, extra=None):
        # Go's flag package takes --name as well as -name.
        return [([self.loop_binary(ctx)] + self._loop_args(ctx, mongo_uri, concurrency, 1), None)]


TRIXIE_CHROOT = "tools/ci/trixie-chroot.sh"
# Debian 13 packages the drogon peer needs: drogon 1.9 + trantor, its jsoncpp headers (not
# pulled in by libdrogon-dev), libmongoc 1.30, g++ 14; valgrind for bench/peers/drogon/cost.py.
DROGON_PACKAGES = ["g++", "libdrogon-dev", "libjsoncpp-dev", "libmongoc-dev", "valgrind"]
# One I/O loop (decided by instruction counts, bench/README.md "drogon"), and as many DB loops
# and queued finds as coroserve's --workers and --queue.
DROGON_FLAGS = {"--io-threads": "1", "--db-threads": COROSERVE_BEST["--workers"],
                "--queue": COROSERVE_BEST["--queue"]}


def ensure_trixie(ctx, who, packages, note=True):
    """Creates the Debian 13 chroot if needed and installs `packages` in it; raises Skip when
    it cannot be had here (not root, the registry unreachable)."""
    script = os.path.join(ctx.root, TRIXIE_CHROOT)
    if not os.access(script, os.X_OK):
        raise Skip(f"{TRIXIE_CHROOT} is missing (the Debian 13 chroot)")
    if note:
        print(f"   {who}: {TRIXIE_CHROOT} ensure (creating the Debian 13 chroot takes minutes the first time)",
              flush=True)
    r = subprocess.run([script, "ensure"] + packages, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        why = [line for line in r.stderr.splitlines() if line.startswith(("skip:", "trixie-chroot: error"))]
        raise Skip(f"Debian 13 chroot unavailable: {(why or r.stderr.strip().splitlines() or ['?'])[-1]}")
    return script


def in_trixie(ctx):
    """The wrapper that runs a binary built under ctx.peers_build inside the chroot. taskset
    (procs.start) pins the wrapper, and the affinity is inherited by the program inside; it stays
    in the wrapper's session, so the process-tree sampler sees it."""
    return [os.path.join(ctx.root, TRIXIE_CHROOT), "run", "--bind", ctx.peers_build, "--"]


def newer_than(sources, outputs):
    """True when an output is missing or older than the newest of the source files."""
    newest = max(map(os.path.getmtime, sources))
    return not all(os.path.exists(o) and os.path.getmtime(o) >= newest for o in outputs)


class Drogon(Contender):
    """drogon 1.9 (Debian 13's libdrogon-dev) built and run inside the trixie chroot of
    tools/ci/trixie-chroot.sh: same kernel, cores, CPU placement and stand-in (the chroot shares
    the network namespace); only the userland is Debian 13."""
    dir = "bench/peers/drogon"

    def __init__(self, cid="drogon", endpoint="/mongo"):
        self.id, self.endpoint = cid, endpoint
        self.label = "drogon 1.9 (Debian 13 userland)"
        if endpoint == "/json":
            self.label, self.needs_db = "drogon /json (constant JSON, no DB query; Debian 13 userland)", False

    def binary(self, ctx):
        return os.path.join(ctx.peers_build, "peer-drogon")

    def loop_binary(self, ctx):
        """The driver-only loop (find_loop.cpp), built beside the server by build.sh."""
        return self.binary(ctx) + "-findloop"

    def prepare(self, ctx):
        script = ensure_trixie(ctx, self.id, DROGON_PACKAGES)
        sources = [os.path.join(ctx.root, self.dir, f) for f in ("build.sh", "main.cpp", "find_loop.cpp",
                                                                  "peer_mongo.hpp")]
        binary = self.binary(ctx)
        if not newer_than(sources, [binary, self.loop_binary(ctx)]):
            return
        os.makedirs(ctx.peers_build, exist_ok=True)
        r = subprocess.run([script, "run", "--bind", ctx.root, "--",
                            sources[0], binary], capture_output=True, text=True, timeout=900)
        if r.returncode:
            raise Skip(f"drogon peer build failed in the Debian 13 chroot: {r.stderr.strip()[-300:]}")

    def find_loops(self, ctx, mongo_uri, concurrency, extra=None):
        """(b) of decompose: the handler's find_one + relaxed extended JSON through the same
        mongoc_client_pool_t settings, on as many threads as the peer has DB loops (the finds it
        can have in flight, whatever `concurrency` wrk brings), in the chroot like the server."""
        if not self.needs_db:
            return None
        flags = dict(DROGON_FLAGS, **(extra or {}))
        cmd = in_trixie(ctx) + [
            self.loop_binary(ctx), "--uri", mongo_uri, "--threads", str(flags["--db-threads"]),
            "--seconds", str(ctx.args.duration), "--warmup", str(max(ctx.args.warmup, 1)),
            "--pool", str(TOTAL_POOL)]
        return [(cmd, None)]

    def start(self, ctx, doc, mongo_uri, extra=None):
        # The chroot's `run` passes no environment through: env sets the peer's.
        env = self._env(ctx, mongo_uri or "mongodb://127.0.0.1:9", 1)
        flags = dict(DROGON_FLAGS, **(extra or {}))
        cmd = in_trixie(ctx) + ["env"]
        cmd += [f"{k}={v}" for k, v in env.items()]
        cmd += [self.binary(ctx), "--port", "0"]
        for k, v in flags.items():
            cmd += [k, str(v)]
        p = procs.start(ctx.name(self.id, doc), cmd, ctx.log_dir, cpus=ctx.server_cpus)
        return p, int(p.first_line(60))


# coroserve-d13 builds this tree's server with the Release preset's settings (Ninja, -O2,
# -Werror) but without the tests, and only the two binaries the contender runs.
COROSERVE_D13_BUILD = "coroserve-d13"  # under ctx.peers_build
COROSERVE_D13_TARGETS = ["coroserve", "mongo-driver-load"]
# What coroserve's sources are: a change to any of these rebuilds the Debian 13 binaries.
COROSERVE_SOURCES = ["CMakeLists.txt", "cmake", "src", "include", "bench/driver_load", "bench/CMakeLists.txt",
                     "tools/CMakeLists.txt"]


class CoroserveD13(Coroserve):
    """coroserve's own sources built and run inside the Debian 13 chroot, like drogon: g++ 14,
    Boost 1.88, libmongoc 1.30 (Debian 12's is 1.23); the same flags and pinning as `coroserve`."""
    start_timeout = 60  # entering the chroot adds a second or two

    def __init__(self, cid="coroserve-d13", endpoint="/mongo"):
        super().__init__(cid, endpoint)
        self.label = "coroserve (Debian 13 userland: g++ 14, libmongoc 1.30)"
        if endpoint == "/json":
            self.label = "coroserve /json (constant JSON, no DB query; Debian 13 userland: g++ 14, libmongoc 1.30)"

    def build_dir(self, ctx):
        return os.path.join(ctx.peers_build, COROSERVE_D13_BUILD)

    def binary(self, ctx):
        return os.path.join(self.build_dir(ctx), "bin", "coroserve")

    def loop_binary(self, ctx):
        return os.path.join(self.build_dir(ctx), "bin", "mongo-driver-load")

    def stamp(self, ctx):
        """Touched after each successful build: ninja leaves up-to-date binaries untouched."""
        return os.path.join(self.build_dir(ctx), ".built")

    def runner(self, ctx):
        return in_trixie(ctx)

    def build_command(self, ctx, jobs=2):
        """The chroot command that configures (once) and builds the two binaries; through the
        host's ccache (bind-mounted) when CCACHE_DIR names one."""
        script = os.path.join(ctx.root, TRIXIE_CHROOT)
        build = self.build_dir(ctx)
        binds, env = ["--bind", ctx.root], []
        ccache = os.environ.get("CCACHE_DIR")
        if ccache and os.path.isdir(ccache):
            binds += ["--bind", ccache]
            env = [f"CCACHE_DIR={ccache}", f"CCACHE_BASEDIR={ctx.root}", "CMAKE_CXX_COMPILER_LAUNCHER=ccache",
                   "CMAKE_C_COMPILER_LAUNCHER=ccache"]
        configure = ('[ -f "$2/build.ninja" ] || cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release '
                     '-DCOROSERVE_WERROR=ON -DCOROSERVE_TESTS=OFF >/dev/null')
        make = f'cmake --build "$2" -j {jobs} --target {" ".join(COROSERVE_D13_TARGETS)}'
        return [script, "run"] + binds + ["--", "env"] + env + [
            "sh", "-c", f"{configure} && {make}", "sh", ctx.root, build]

    def sources(self, ctx):
        files = []
        for rel in COROSERVE_SOURCES:
            path = os.path.join(ctx.root, rel)
            if os.path.isfile(path):
                files.append(path)
            for top, _, names in os.walk(path):
                files += [os.path.join(top, n) for n in names]
        return files

    def prepare(self, ctx):
        script = ensure_trixie(ctx, self.id, [])
        # The packages tools/install-deps.sh picks for a build on Debian 13 (as debian13-check.sh).
        r = subprocess.run([script, "run", "--bind", ctx.root, "--", os.path.join(ctx.root, "tools/install-deps.sh"),
                            "--print", "build"], capture_output=True, text=True, timeout=600)
        if r.returncode or not r.stdout.split():
            raise Skip(f"tools/install-deps.sh --print build failed in the Debian 13 chroot: {r.stderr.strip()[-300:]}")
        ensure_trixie(ctx, self.id, r.stdout.split() + ["valgrind"], note=False)
        if not newer_than(self.sources(ctx), [self.stamp(ctx), self.binary(ctx), self.loop_binary(ctx)]):
            return
        os.makedirs(self.build_dir(ctx), exist_ok=True)
        print(f"   {self.id}: building {', '.join(COROSERVE_D13_TARGETS)} in the Debian 13 chroot", flush=True)
        r = subprocess.run(self.build_command(ctx), capture_output=True, text=True, timeout=3600)
        if r.returncode:
            raise Skip(f"coroserve build failed in the Debian 13 chroot: {(r.stdout + r.stderr).strip()[-300:]}")
        with open(self.stamp(ctx), "w"):
            pass


def all_contenders():
    """In report order: ours, the ceiling, then the seed's contenders, then Go, drogon and ours
    on Debian 13."""
    return [
        Coroserve("coroserve", "/mongo"),
        Coroserve("coroserve-json", "/json"),
        Nginx(),
        FlaskUwsgi(gevent=False),
        FlaskUwsgi(gevent=True),
        FlaskUwsgi(gevent=True, router=True),
        FlaskGunicorn(),
        TornadoMotor(),
        NodeExpress(),
        GoNetHttp(),
        Drogon("drogon", "/mongo"),
        Drogon("drogon-json", "/json"),
        CoroserveD13("coroserve-d13", "/mongo"),
        CoroserveD13("coroserve-d13-json", "/json"),
    ]


def by_id():
    return {c.id: c for c in all_contenders()}
