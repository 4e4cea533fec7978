"""procs: the /proc sampling of a real process tree (CPU time and context switches)."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import procs  # noqa: E402

# A child that sleeps 100 times (each sleep is at least one voluntary context switch) in two
# threads, then spins about 0.3 s of CPU.
CHILD = """
import threading, time
def nap():
    for _ in range(50):
        time.sleep(0.005)
ts = [threading.Thread(target=nap) for _ in range(2)]
[t.start() for t in ts]
[t.join() for t in ts]
# The threads' own counts leave /proc with them (a sample may miss them): the main thread's
# 120 naps alone make the 100 switches the test asks for.
for _ in range(120):
    time.sleep(0.005)
t0 = time.process_time()
while time.process_time() - t0 < 0.3:
    pass
time.sleep(0.6)
"""


class TreeSamplerTest(unittest.TestCase):
    def test_switches_and_cpu_of_a_real_tree(self):
        log_dir = tempfile.mkdtemp(prefix="bench-procs-test-")
        p = procs.start("child", ["/usr/bin/python3", "-c", CHILD], log_dir)
        try:
            with procs.TreeSampler([p.pid], interval=0.05) as s:
                p.popen.wait(30)
            # the last sample may come after the exit: the figures from the samples before it count
            self.assertGreaterEqual(s.switches, 100)
            self.assertLess(s.switches, 100000)
            self.assertGreaterEqual(s.cpu_s, 0.2)
        finally:
            procs.stop(p)

    def test_thread_switches_of_this_process(self):
        t = procs.thread_switches(os.getpid())
        self.assertIn(os.getpid(), t)  # the main thread's tid is the pid
        self.assertTrue(all(isinstance(n, int) and n >= 0 for n in t.values()))
        self.assertEqual(procs.thread_switches(2 ** 22 + 7), {})  # no such process

    def test_stop_kills_the_group(self):
        log_dir = tempfile.mkdtemp(prefix="bench-procs-test-")
        p = procs.start("sleeper", ["/bin/sh", "-c", "sleep 30 & sleep 30"], log_dir)
        procs.stop(p, timeout=2)
        self.assertFalse(p.alive())
        # Killed children are zombies until init reaps them (this machine's init may not): none
        # of the session may still be running.
        r = subprocess.run(["ps", "-o", "stat=", "-s", str(p.pid)], capture_output=True, text=True)
        self.assertEqual([st for st in r.stdout.split() if not st.startswith("Z")], [])


if __name__ == "__main__":
    unittest.main()
