"""Processes the harness starts: each in its own session (so the whole tree can be killed
with one signal), pinned with taskset, logged to a file; and /proc sampling of a tree's
RSS and CPU time. Every process started here is killed on exit, Ctrl-C included."""
import atexit
import http.client
import os
import resource
import signal
import socket
import subprocess
import threading
import time

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")

_live = []  # Popen objects still to be killed


def raise_fd_limit():
    """Soft RLIMIT_NOFILE up to the hard limit; children inherit it. Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    """An ephemeral port for servers that cannot report the one they bound (small race)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A started process tree: its leader's Popen, its name and its log file."""

    def __init__(self, name, popen, log_path, stdout_path):
        self.name, self.popen, self.log_path, self.stdout_path = name, popen, log_path, stdout_path

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def first_line(self, timeout):
        """The first stdout line (the bound port for coroserve, the stand-in, the Go peer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.stdout_path) as f:
                line = f.readline()
            if line.endswith("\n"):
                return line.strip()
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}) before printing its port; "
                                   f"see {self.log_path}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} printed no port within {timeout} s; see {self.log_path}")

    def log_tail(self, n=5):
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(line.strip() for line in f.readlines()[-n:])
        except OSError:
            return ""


def start(name, cmd, log_dir, *, cpus=None, env=None, cwd=None, stdin=subprocess.DEVNULL):
    """Starts cmd in a new session, pinned to cpus ('0', '1', '0,1' or None), stdout and
    stderr to files under log_dir."""
    if cpus:
        cmd = ["taskset", "-c", cpus] + list(cmd)
    os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, f"{name}.log")
    stdout_path = os.path.join(log_dir, f"{name}.stdout")
    full_env = dict(os.environ)
    full_env.update(env or {})
    with open(log_path, "ab") as log, open(stdout_path, "wb") as out:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        p = subprocess.Popen(cmd, stdout=out, stderr=log, stdin=stdin, env=full_env, cwd=cwd,
                             start_new_session=True)
    _live.append(p)
    return Proc(name, p, log_path, stdout_path)


def _signal_group(p, sig):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def live_pids(sid):
    """Pids of the session that are not zombies (killed children wait for init to reap them)."""
    out = []
    for pid in session_pids(sid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                data = f.read()
        except OSError:
            continue
        if data[data.rindex(")") + 2] != "Z":
            out.append(pid)
    return out


def stop(proc, timeout=5.0, wait_group=False):
    """SIGTERM to the whole session's process group, SIGKILL after timeout. wait_group: also
    give the other processes of the group (workers) until the timeout to exit by themselves,
    e.g. to write a profile. Returns the exit code."""
    p = proc.popen if isinstance(proc, Proc) else proc
    deadline = time.monotonic() + timeout
    if p.poll() is None:
        _signal_group(p, signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    while wait_group and live_pids(p.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    # Workers can outlive their leader (e.g. a master that exits first): sweep the group.
    _signal_group(p, signal.SIGKILL)
    try:
        p.wait(2)
    except subprocess.TimeoutExpired:
        pass
    if p in _live:
        _live.remove(p)
    return p.returncode


def stop_all():
    for p in list(_live):
        stop(p, timeout=2.0)


def _on_signal(signum, _frame):
    stop_all()
    raise SystemExit(128 + signum)


def install_cleanup():
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    # SIGINT raises KeyboardInterrupt (even when started in the background, where the shell
    # leaves SIGINT ignored); atexit then stops everything.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def session_pids(sid):
    """Pids of every process whose session id is sid (a tree started by start())."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _stat(int(entry))
        if st and st["session"] == sid:
            pids.append(int(entry))
    return pids


def _stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return {
        "session": int(rest[3]),
        "cpu_ticks": int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14]),
        "rss_kb": int(rest[21]) * PAGE_KB,
    }


def thread_switches(pid):
    """{tid: voluntary + involuntary context switches} of every thread of pid, from
    /proc/<pid>/task/<tid>/status (threads that exit between the listing and the read are left out)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                n = 0
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        n += int(line.split()[1])
            out[int(tid)] = n
        except (OSError, ValueError):
            pass
    return out


def tree_switches(sid):
    """{tid: context switches} of every thread of every process of a session."""
    out = {}
    for pid in session_pids(sid):
        out.update(thread_switches(pid))
    return out


def open_fds(pid):
    """How many file descriptors the process has open (None once it has exited)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def tree_usage(sid):
    """(sum of RSS in KiB, {pid: cpu ticks incl. reaped children}) for a session."""
    rss, ticks = 0, {}
    for pid in session_pids(sid):
        st = _stat(pid)
        if st and st["session"] == sid:
            rss += st["rss_kb"]
            ticks[pid] = st["cpu_ticks"]
    return rss, ticks


class TreeSampler:
    """Samples a process tree's summed RSS (peak), CPU seconds and context switches (every
    thread of every process, voluntary + involuntary) while a load runs. A thread or process
    that exits between two samples loses what it did since the last sample (samples every
    0.25 s; the servers here keep their threads for their lifetime)."""

    def __init__(self, sids, interval=0.25):
        self.sids, self.interval = list(sids), interval
        self.peak_rss_kb = 0
        self._start_ticks, self._last_ticks = {}, {}
        self._start_switches, self._last_switches = {}, {}
        self._stop = threading.Event()
        self._thread = None

    def _sample(self):
        total = 0
        for sid in self.sids:
            rss, ticks = tree_usage(sid)
            total += rss
            self._last_ticks.update(ticks)
            self._last_switches.update(tree_switches(sid))
        self.peak_rss_kb = max(self.peak_rss_kb, total)

    def __enter__(self):
        for sid in self.sids:
            self._start_ticks.update(tree_usage(sid)[1])
            self._start_switches.update(tree_switches(sid))
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def cpu_s(self):
        ticks = sum(t - self._start_ticks.get(pid, 0) for pid, t in self._last_ticks.items())
        return ticks / CLK_TCK

    @property
    def switches(self):
        """Context switches of the tree's threads during the sampling (new threads from 0)."""
        return sum(n - self._start_switches.get(tid, 0) for tid, n in self._last_switches.items())


def http_get(port, path, timeout=2.0):
    """(status, body bytes) of GET http://127.0.0.1:port/path."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc, port, path, timeout=30.0):
    """Polls GET path until it answers 200; raises with the log's tail otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}): {proc.log_tail()}")
        try:
            status, body = http_get(port, path)
            if status == 200:
                return body
            last = f"HTTP {status}: {body[:200]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready on :{port}{path} after {timeout:.0f} s ({last}): {proc.log_tail()}")
