"""The installed forms of coroserve, used for real:
- Consumer: `cmake --install` into a fresh prefix, then tests/examples/consumer (a project of its
  own) finds the package, builds pool_user and a verbatim copy of examples/minimal_mongo_server.cpp,
  and both run; a version the package does not offer is refused.
- DebianPackage: cpack builds the .deb; its files, control fields and conffiles are checked, the
  systemd unit passes `systemd-analyze verify`, and the binaries run from the extracted tree
  with the settings of the packaged /etc/default/coroserve.
Env: BUILD_DIR (the CMake build directory), SOURCE_DIR, WORK_DIR (kept between runs: stable
paths let ccache reuse the consumer's objects), CXX_LAUNCHER (the main build's compiler launcher,
e.g. ccache), BENCH_DATA_DIR, PROJECT_VERSION.
Usage: /usr/bin/python3 install_test.py [TestCase ...]"""
import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "standin", "python"))
import standin_proc  # noqa: E402

BUILD = os.environ.get("BUILD_DIR", "")
SOURCE = os.environ.get("SOURCE_DIR", "")
WORK = os.environ.get("WORK_DIR", "")
SMALL_DOC = os.path.join(os.environ.get("BENCH_DATA_DIR", ""), "small_doc.json")
SMALL_ID = "537416b501d53a77bb94135c"


def run(args, **kw):
    res = subprocess.run(args, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)
    return res


def check(testcase, args, **kw):
    res = run(args, **kw)
    testcase.assertEqual(res.returncode, 0, f"{args}:\n{res.stdout}\n{res.stderr}")
    return res.stdout


def standin(exe):
    os.environ["STANDIN_EXE"] = exe
    return standin_proc.Standin("--seed", f"articles.articles={SMALL_DOC}")


class Server:
    """A server that prints its port alone on its first stdout line."""

    def __init__(self, args, env=None):
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.proc.kill()
            raise RuntimeError(f"{args[0]}: expected the port, got {line!r}: {self.proc.stderr.read()}")
        self.port = int(line)

    def get(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path)
        res = conn.getresponse()
        body = res.read().decode()
        conn.close()
        return res.status, body

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


class Consumer(unittest.TestCase):
    def test_installed_package_builds_and_runs_a_project_of_its_own(self):
        work = os.path.join(WORK, "consumer")
        prefix, build = os.path.join(work, "prefix"), os.path.join(work, "build")
        shutil.rmtree(prefix, ignore_errors=True)
        shutil.rmtree(build, ignore_errors=True)
        check(self, ["cmake", "--install", BUILD, "--prefix", prefix])
        for f in ["include/coroserve/blocking_pool.hpp", "lib/libcoroserve_blocking_pool.a",
                  "lib/cmake/coroserve/coroserveConfig.cmake", "lib/cmake/coroserve/coroserveConfigVersion.cmake"]:
            self.assertTrue(os.path.isfile(os.path.join(prefix, f)), f)
        self.assertFalse(os.path.exists(os.path.join(prefix, "lib/systemd")), "the unit is for the .deb only")

        project = os.path.join(SOURCE, "tests", "examples", "consumer")
        configure = ["cmake", "-S", project, "-B", build, "-G", "Ninja", f"-DCMAKE_PREFIX_PATH={prefix}"]
        if os.environ.get("CXX_LAUNCHER"):  # the main build's ccache, if it has one
            configure.append(f"-DCMAKE_CXX_COMPILER_LAUNCHER={os.environ['CXX_LAUNCHER']}")
        # Warnings as errors, plus the main build's flags: a sanitizer build installs instrumented
        # archives, and the consumer must be instrumented and link the runtime too.
        cxx_flags = " ".join(["-Wall -Wextra -Wpedantic -Werror", os.environ.get("BUILD_CXX_FLAGS", "")]).strip()
        configure.append(f"-DCMAKE_CXX_FLAGS={cxx_flags}")
        if os.environ.get("BUILD_EXE_LINKER_FLAGS"):
            configure.append(f"-DCMAKE_EXE_LINKER_FLAGS={os.environ['BUILD_EXE_LINKER_FLAGS']}")
        wrong = run(configure + ["-DCOROSERVE_WANT=9.0"])
        self.assertNotEqual(wrong.returncode, 0, "find_package(coroserve 9.0) must fail")
        self.assertIn('compatible with requested version "9.0"', wrong.stderr)
        self.assertIn("version: 0.1.0", wrong.stderr)
        example = os.path.join(SOURCE, "examples", "minimal_mongo_server.cpp")
        check(self, configure + ["-DCOROSERVE_WANT=0.1", f"-DMINIMAL_SERVER_SOURCE={example}"])
        check(self, ["cmake", "--build", build, "-j2"], timeout=600)

        out = check(self, [os.path.join(build, "pool_user")], timeout=30)
        self.assertEqual(out.splitlines(), ["ran on a pool thread: yes", "resumed on the I/O thread: yes",
                                            "rethrown at the co_await: boom"])

        db = standin(os.path.join(BUILD, "bin", "mongo-standin"))
        self.addCleanup(db.close)
        server = Server([os.path.join(build, "minimal_mongo_server"), "0", db.uri, "articles"])
        self.addCleanup(server.stop)
        status, body = server.get("/articles")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["_id"], {"$oid": SMALL_ID})
        self.assertEqual(server.stop(), 0)


class DebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        out = os.path.join(WORK, "deb")
        shutil.rmtree(out, ignore_errors=True)
        res = run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", out])
        if res.returncode != 0:
            raise RuntimeError(f"cpack failed:\n{res.stdout}\n{res.stderr}")
        debs = glob.glob(os.path.join(out, "*.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"expected one .deb in {out}, found {debs}")
        cls.deb = debs[0]
        cls.root = os.path.join(out, "root")
        subprocess.run(["dpkg-deb", "-x", cls.deb, cls.root], check=True, timeout=60)

    def test_file_name_contents_and_modes(self):
        version = os.environ.get("PROJECT_VERSION", "")
        self.assertRegex(os.path.basename(self.deb), rf"^coroserve_{version}_[a-z0-9]+\.deb$")
        listing = check(self, ["dpkg-deb", "-c", self.deb])
        modes = {line.split()[-1]: line.split()[0] for line in listing.splitlines()}
        for path in ["./usr/bin/coroserve", "./usr/bin/mongo-standin", "./usr/lib/systemd/system/coroserve.service",
                     "./etc/default/coroserve", "./usr/share/doc/coroserve/README.md"]:
            self.assertIn(path, modes)
        self.assertEqual(modes["./usr/bin/coroserve"], "-rwxr-xr-x")
        self.assertEqual(modes["./etc/default/coroserve"], "-rw-------", "it may hold a MongoDB password")
        self.assertFalse([p for p in modes if "/include/" in p or p.endswith(".a")], "no dev files in the server package")

    def test_control_fields_and_conffiles(self):
        info = check(self, ["dpkg-deb", "-I", self.deb])
        fields = dict(line.strip().split(": ", 1) for line in info.splitlines() if ": " in line and line.startswith(" ")
                      and not line.strip()[0].isdigit())
        self.assertEqual(fields["Package"], "coroserve")
        self.assertEqual(fields["Version"], os.environ.get("PROJECT_VERSION"))
        depends = fields["Depends"]
        for lib in ["libmongoc-1.0-0", "libbson-1.0-0", "libboost-json1.8", "libstdc++6"]:
            self.assertIn(lib, depends)
        conffiles = check(self, ["dpkg-deb", "-I", self.deb, "conffiles"])
        self.assertEqual(conffiles.split(), ["/etc/default/coroserve"])

    def test_systemd_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        unit = os.path.join(self.root, "usr/lib/systemd/system/coroserve.service")
        with open(unit) as f:
            text = f.read()
        self.assertIn("EnvironmentFile=/etc/default/coroserve\n", text)
        self.assertIn("ExecStart=/usr/bin/coroserve\n", text)
        # The unit names /usr/bin/coroserve, which is in the extracted tree, not on this machine.
        check_dir = os.path.join(WORK, "deb", "unit")
        os.makedirs(check_dir, exist_ok=True)
        with open(os.path.join(check_dir, "coroserve.service"), "w") as f:
            f.write(text.replace("ExecStart=/usr/bin/", f"ExecStart={self.root}/usr/bin/"))
        res = run(["systemd-analyze", "verify", "--man=no", os.path.join(check_dir, "coroserve.service")])
        self.assertEqual((res.returncode, res.stderr), (0, ""), "warnings count as failures")

    def test_packaged_binaries_run_with_the_packaged_settings(self):
        exe = os.path.join(self.root, "usr/bin/coroserve")
        out = check(self, [exe, "--help"], timeout=10)
        self.assertIn("--mongodb-uri", out)
        env = dict(os.environ)
        with open(os.path.join(self.root, "etc/default/coroserve")) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    key, value = line.strip().split("=", 1)
                    env[key] = value
        db = standin(os.path.join(self.root, "usr/bin/mongo-standin"))
        self.addCleanup(db.close)
        env.update(COROSERVE_PORT="0", MONGODB_URI=db.uri, COROSERVE_IO_THREADS="1")
        server = Server([exe], env=env)
        self.addCleanup(server.stop)
        status, body = server.get("/mongo")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["_id"], {"$oid": SMALL_ID})
        self.assertEqual(server.stop(), 0, "SIGTERM drains and exits 0, as systemd expects")


if __name__ == "__main__":
    unittest.main(verbosity=2)
