"""The coroserve-d13 contenders: this tree's coroserve built and run in the Debian 13 chroot.
The listing, the build command and the commands run need no chroot; the end-to-end test (the
real server in the chroot against the real stand-in) is skipped with the reason where the chroot
or the binaries are missing: `bench/run --contenders coroserve-d13 ...` builds them."""
import json
import os
import subprocess
import sys
import tempfile
import time
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import contenders  # noqa: E402
import harness  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
import test_drogon  # noqa: E402  (its chroot_unready)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDIN = os.path.join(ROOT, "build/release/bin/mongo-standin")
SMALL_ID = "537416b501d53a77bb94135c"


def fake_ctx(root="/r"):
    return types.SimpleNamespace(root=root, peers_build=f"{root}/build/bench-peers", bin_dir=f"{root}/bin",
                                 coroserve_flags={}, args=types.SimpleNamespace(duration=3, warmup=0))


class ListedTest(unittest.TestCase):
    def test_both_are_contenders_and_named_debian_13(self):
        table = contenders.by_id()
        mongo, json_ = table["coroserve-d13"], table["coroserve-d13-json"]
        self.assertEqual((mongo.endpoint, mongo.needs_db), ("/mongo", True))
        self.assertEqual((json_.endpoint, json_.needs_db), ("/json", False))
        self.assertEqual(mongo.label, "coroserve (Debian 13 userland: g++ 14, libmongoc 1.30)")
        self.assertIn("Debian 13 userland: g++ 14, libmongoc 1.30", json_.label)
        for cid in ("coroserve-d13", "coroserve-d13-json"):
            self.assertIn(cid, harness.parse_args([]).contenders)
            self.assertEqual(harness.parse_args(["--contenders", cid]).contenders, [cid])
            self.assertEqual(report._name(cid), f"{cid} (Debian 13)")

    def test_listed_in_the_readme_table(self):
        with open(os.path.join(ROOT, "bench/README.md")) as f:
            readme = f.read()
        for cid in ("coroserve-d13", "coroserve-d13-json"):
            self.assertIn(f"| `{cid}` |", readme)


class BuildCommandTest(unittest.TestCase):
    def setUp(self):
        self.old_ccache = os.environ.pop("CCACHE_DIR", None)

    def tearDown(self):
        os.environ.pop("CCACHE_DIR", None)
        if self.old_ccache is not None:
            os.environ["CCACHE_DIR"] = self.old_ccache

    def test_release_build_of_the_two_binaries_inside_the_chroot(self):
        c = contenders.by_id()["coroserve-d13"]
        cmd = c.build_command(fake_ctx())
        self.assertEqual(cmd[:6], ["/r/" + contenders.TRIXIE_CHROOT, "run", "--bind", "/r", "--", "env"])
        self.assertEqual(cmd[6:8], ["sh", "-c"])
        script = cmd[8]
        self.assertEqual(cmd[9:], ["sh", "/r", "/r/build/bench-peers/coroserve-d13"])
        for part in ("-G Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DCOROSERVE_WERROR=ON", "-DCOROSERVE_TESTS=OFF",
                     "-j 2", "--target coroserve mongo-driver-load"):
            self.assertIn(part, script)
        # The script parses as sh (the chroot's /bin/sh is dash, like the host's).
        r = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Not the host's build/: the binaries live in the contender's own build directory.
        self.assertEqual(c.binary(fake_ctx()), "/r/build/bench-peers/coroserve-d13/bin/coroserve")
        self.assertEqual(c.loop_binary(fake_ctx()), "/r/build/bench-peers/coroserve-d13/bin/mongo-driver-load")

    def test_the_host_ccache_is_bind_mounted_when_there_is_one(self):
        ccache = tempfile.mkdtemp(prefix="bench-d13-ccache-")
        os.environ["CCACHE_DIR"] = ccache
        cmd = contenders.by_id()["coroserve-d13"].build_command(fake_ctx(), jobs=1)
        self.assertEqual(cmd[2:7], ["--bind", "/r", "--bind", ccache, "--"])
        self.assertIn(f"CCACHE_DIR={ccache}", cmd)
        self.assertIn("CMAKE_CXX_COMPILER_LAUNCHER=ccache", cmd)
        self.assertIn("-j 1", cmd[cmd.index("-c") + 1])

    def test_rebuilt_when_a_source_is_newer(self):
        d = tempfile.mkdtemp(prefix="bench-d13-stale-")
        src, out = os.path.join(d, "a.cpp"), os.path.join(d, "out")
        for path, mtime in ((src, 1000), (out, 2000)):
            with open(path, "w"):
                pass
            os.utime(path, (mtime, mtime))
        self.assertFalse(contenders.newer_than([src], [out]))
        os.utime(src, (3000, 3000))
        self.assertTrue(contenders.newer_than([src], [out]))
        self.assertTrue(contenders.newer_than([src], [out, os.path.join(d, "missing")]))
        # the tree's own server sources are among those watched
        watched = contenders.by_id()["coroserve-d13"].sources(fake_ctx(ROOT))
        self.assertIn(os.path.join(ROOT, "src/main.cpp"), watched)
        self.assertIn(os.path.join(ROOT, "bench/driver_load/driver_load.cpp"), watched)

    def test_runs_in_the_chroot_with_coroserves_flags(self):
        ctx = fake_ctx()
        d13, host = contenders.by_id()["coroserve-d13"], contenders.by_id()["coroserve"]
        self.assertEqual(d13.flags(ctx), host.flags(ctx))
        wrapper = ["/r/" + contenders.TRIXIE_CHROOT, "run", "--bind", "/r/build/bench-peers", "--"]
        self.assertEqual(d13.runner(ctx), wrapper)
        (cmd, cwd), = d13.find_loops(ctx, "mongodb://x", 200)
        self.assertIsNone(cwd)
        self.assertEqual(cmd, wrapper + ["/r/build/bench-peers/coroserve-d13/bin/mongo-driver-load", "--uri",
                                         "mongodb://x", "--threads", contenders.COROSERVE_BEST["--workers"],
                                         "--seconds", "3"])
        self.assertIsNone(contenders.by_id()["coroserve-d13-json"].find_loops(ctx, "mongodb://x", 200))


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def chroot_ready():
    """None when the chroot and both binaries are there, else why not."""
    c = contenders.by_id()["coroserve-d13"]
    ctx = fake_ctx(ROOT)
    return test_drogon.chroot_unready([c.binary(ctx), c.loop_binary(ctx)])


@unittest.skipIf(chroot_ready(), chroot_ready())
class InTheChrootTest(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.join("/tmp", f"bench-d13-test-{os.getpid()}")
        self.ctx = fake_ctx(ROOT)
        self.ctx.log_dir, self.ctx.server_cpus, self.ctx.name = self.dir, "0", lambda what, doc="": f"{what}-{doc}"
        self.ctx.args.duration = 1
        self.standin = procs.start("standin", [STANDIN, "--port", "0", "--bind", "127.0.0.1", "--seed",
                                               f"articles.articles={ROOT}/bench/data/small_doc.json"], self.dir)
        self.uri = f"mongodb://127.0.0.1:{int(self.standin.first_line(20))}"
        self.server = None

    def tearDown(self):
        for p in (self.server, self.standin):
            if p:
                procs.stop(p)

    def test_serves_both_routes_pinned_on_debian_13s_libmongoc(self):
        c = contenders.by_id()["coroserve-d13"]
        self.server, port = c.start(self.ctx, "small", self.uri)
        procs.wait_ready(self.server, port, "/mongo", timeout=30)
        status, body = procs.http_get(port, "/mongo")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["_id"], {"$oid": SMALL_ID})
        self.assertEqual(procs.http_get(port, "/json")[0], 200)
        # The server inside the chroot carries the CPU placement and maps the chroot's libmongoc.
        chroot = subprocess.run([os.path.join(ROOT, contenders.TRIXIE_CHROOT), "path"], capture_output=True,
                                text=True).stdout.strip()
        pids = [pid for pid in procs.session_pids(self.server.pid) if comm(pid) == "coroserve"]
        self.assertEqual(len(pids), 1)
        with open(f"/proc/{pids[0]}/status") as f:
            self.assertIn("Cpus_allowed_list:\t0\n", f.read())
        with open(f"/proc/{pids[0]}/maps") as f:
            mongoc = {line.split()[-1] for line in f if "libmongoc" in line}
        self.assertTrue(mongoc and all(m.startswith(chroot + "/") for m in mongoc), mongoc)

    def test_driver_only_loop_runs_in_the_chroot(self):
        (cmd, _), = contenders.by_id()["coroserve-d13"].find_loops(self.ctx, self.uri, 200, {"--workers": "2"})
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertLess(time.monotonic() - t0, 30)
        row = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual((row["threads"], row["errors"], row["empty"]), (2, 0, 0))
        self.assertGreater(row["finds"], 0)


if __name__ == "__main__":
    unittest.main()
