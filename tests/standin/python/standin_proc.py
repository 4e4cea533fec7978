"""Starts mongo-standin on an ephemeral port for a Python driver test, and speaks raw
wire bytes for the malformed-message checks. Path of the binary: env STANDIN_EXE."""
import os
import socket
import struct
import subprocess
import threading


class Standin:
    """mongo-standin --port 0 --control-stdin EXTRA...; `exe` defaults to env STANDIN_EXE,
    `stderr` (a file) to ours. Its controls may be sent from several threads."""

    def __init__(self, *extra, exe=None, stderr=None):
        exe = exe or os.environ["STANDIN_EXE"]
        self.proc = subprocess.Popen([exe, "--port", "0", "--control-stdin", *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr, text=True)
        self.lock = threading.Lock()
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"mongo-standin printed {line!r} instead of a port")
        self.port = int(line)
        self.uri = f"mongodb://127.0.0.1:{self.port}"

    def control(self, line):
        with self.lock:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise RuntimeError(f"control {line!r}: {answer!r}")
        return answer

    def replset(self):
        """The "rs" control answer: primary and term (ints), finds, up, partitioned (lists)."""
        fields = dict(word.split("=", 1) for word in self.control("rs").split()[1:])
        out = {"primary": int(fields["primary"]), "term": int(fields["term"])}
        for key in ("finds", "up", "partitioned"):
            out[key] = [int(v) for v in fields[key].split(",")]
        return out

    def running(self):
        return self.proc.poll() is None

    def close(self):
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()
        return code


OP_MSG = 2013
def _ping_body():
    # {ping: 1, $db: "admin"} built by hand so the check needs no BSON library.
    body = b"\x10ping\x00" + struct.pack("<i", 1) + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def op_msg(body, request_id=1, length=None, opcode=OP_MSG):
    payload = struct.pack("<I", 0) + b"\x00" + body
    total = 16 + len(payload) if length is None else length
    return struct.pack("<iiii", total, request_id, 0, opcode) + payload


def malformed_messages():
    good = _ping_body()
    truncated = bytearray(good)
    truncated[0] = 200
    return {
        "length below the header": struct.pack("<iiii", 8, 1, 0, OP_MSG),
        "oversized": op_msg(good, length=50_000_000),
        "truncated BSON": op_msg(bytes(truncated)),
        "unknown opcode": op_msg(good, opcode=4242),
    }


def closed_by_server(port, data, timeout=5.0):
    """Sends data on a new connection; True if the server then closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        try:
            return s.recv(1) == b""
        except ConnectionResetError:
            return True


def raw_ping_ok(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as s:
        s.sendall(op_msg(_ping_body(), request_id=77))
        head = s.recv(16, socket.MSG_WAITALL)
        length, _, response_to, opcode = struct.unpack("<iiii", head)
        rest = s.recv(length - 16, socket.MSG_WAITALL)
        return response_to == 77 and opcode == OP_MSG and b"ok\x00" in rest
