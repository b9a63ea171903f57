# Integration test fixtures: start mxguard from the build tree and real peers
# (Postfix's smtp-sink, a private Postfix instance, ...) on loopback ports, each
# test in its own temporary folder. Teardown always runs; mxguard's log is
# checked for sanitizer reports at the end of every test.
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

MXGUARD = os.environ.get("MXGUARD_BIN", "../../build/src/mxguard")
SOURCE = os.environ.get("MX_SOURCE_DIR", os.path.abspath("../.."))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


from conftest_util import free_port, wait_for, wait_port  # noqa: F401


class Mxguard:
    """One mxguard process with its own config, recipients file and log."""

    def __init__(self, tmp, downstream, recipients=("alice@example.test", "bob@example.test",
                                                     "postmaster@example.test"),
                 domains=("example.test",), extra="", timeouts=None, recipients_conf=None,
                 env=None):
        self.tmp = tmp
        # env: variables added to the process's environment
        self.env = dict(os.environ, **(env or {}))
        # recipients_conf: the inside of `recipients = { ... };` (a directory
        # instead of the file)
        self.recipients_conf = recipients_conf
        self.port = free_port()
        self.conf = tmp / "mxguard.conf"
        self.rcpt_file = tmp / "recipients"
        self.logfile = tmp / "mxguard.log"
        self.proc = None
        self.timeouts = {"downstream_connect": '"3s"', "downstream_reply": '"10s"',
                         "downstream_data": '"10s"', "shutdown": '"20s"'}
        self.timeouts.update(timeouts or {})
        self.write_recipients(recipients)
        self.write_config(downstream, domains, extra)

    def write_recipients(self, recipients):
        self.rcpt_file.write_text("".join(r + "\n" for r in recipients))

    def write_config(self, downstream, domains=("example.test",), extra=""):
        if isinstance(downstream, str):
            down = f'"{downstream}"'
        else:
            down = "(" + ", ".join(downstream) + ")"
        doms = ", ".join(f'"{d}"' for d in domains)
        self.conf.write_text(f"""
listen = ["127.0.0.1:{self.port}"];
hostname = "mx1.example.test";
domains = [{doms}];
recipients = {{ {self.recipients_conf or f'file = "{self.rcpt_file}";'} }};
downstream = {down};
workers = 2;
tmp_dir = "{self.tmp}";
store = {{ path = "{self.tmp}/store"; }};
timeouts = {{ {" ".join(f"{k} = {v};" for k, v in self.timeouts.items())} }};
{extra}
""")

    def start(self, wait=True):
        self.log_fh = open(self.logfile, "ab")
        self.proc = subprocess.Popen([MXGUARD, "serve", "-c", str(self.conf)],
                                     stdout=self.log_fh, stderr=self.log_fh, env=self.env)
        if wait:
            wait_for(lambda: "started pid=" in self.log() or self.proc.poll() is not None,
                     what="mxguard start")
            if self.proc.poll() is not None:
                raise RuntimeError("mxguard exited at start:\n" + self.log())
        return self

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10.0):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.log()), timeout, what=f"log /{pattern}/")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mxguard did not stop on SIGTERM:\n" + self.log()[-3000:])
        self.log_fh.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def check_clean(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, "sanitizer report in mxguard log:\n" + text[-6000:]


class SmtpSink:
    """Postfix's smtp-sink: a real SMTP/LMTP peer that dumps what it gets."""

    def __init__(self, tmp, args=(), lmtp=False, name="sink"):
        # smtp-sink runs as nobody: its dump folder must be reachable by it,
        # which pytest's private tmp_path is not
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"mxguard-{name}-"))
        os.chmod(self.dir, 0o777)
        self.port = free_port()
        # -D: every transaction appended to one file, in arrival order
        self.dump = self.dir / "dump"
        argv = ["smtp-sink", "-u", "nobody", "-D", str(self.dump)]
        if lmtp:
            argv.append("-L")
        argv += list(args) + [f"127.0.0.1:{self.port}", "1000"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    @property
    def target(self):
        return f"smtp:127.0.0.1:{self.port}"

    def messages(self):
        """Dumped messages, oldest first: dicts with envelope and body (LF line ends)."""
        out = []
        try:
            dump = self.dump.read_bytes()
        except FileNotFoundError:
            return out
        for part in dump.split(b"X-Client-Addr: ")[1:]:
            text = b"X-Client-Addr: " + part
            head, _, rest = text.partition(b"Received: from")
            env = {}
            for line in head.decode(errors="replace").splitlines():
                k, _, v = line.partition(": ")
                env.setdefault(k, []).append(v)
            # body: what mxguard sent (after the sink's own 3-line Received:);
            # message: the body without mxguard's Received: and X-Spam-*
            # verdict headers; verdict: those headers
            lines = rest.split(b"\n")[3:]
            body = b"\n".join(lines)
            i = 0
            if lines and lines[0].startswith(b"Received:"):
                i = 1
                while i < len(lines) and lines[i][:1] in (b"\t", b" "):
                    i += 1
            v = i
            while i < len(lines) and lines[i].startswith(b"X-Spam-"):
                i += 1
            out.append({"env": env, "body": body, "message": b"\n".join(lines[i:]),
                        "verdict": b"\n".join(lines[v:i]), "raw": text})
        return out

    def wait_messages(self, n, timeout=10.0):
        return wait_for(lambda: len(self.messages()) >= n and self.messages(), timeout,
                        what=f"{n} messages at smtp-sink")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sink(tmp_path):
    s = SmtpSink(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def make_sink(tmp_path):
    made = []

    def make(*args, **kw):
        kw.setdefault("name", f"sink{len(made)}")
        s = SmtpSink(tmp_path, *args, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


@pytest.fixture
def make_mx(tmp_path):
    """Factory: make_mx(downstream, ...) -> started Mxguard. Stopped and
    checked for sanitizer reports at teardown."""
    made = []

    def make(downstream, start=True, **kw):
        d = tmp_path / f"mx{len(made)}"
        d.mkdir()
        mx = Mxguard(d, downstream, **kw)
        made.append(mx)
        if start:
            mx.start()
        return mx
    yield make
    for mx in made:
        try:
            mx.stop()
        finally:
            mx.check_clean()


@pytest.fixture
def mx(make_mx, sink):
    """mxguard relaying to smtp-sink."""
    return make_mx(sink.target)


class Client:
    """A raw SMTP client: send exact bytes, read replies (multi-line aware)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, greeting=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        if greeting:
            self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed; buffered: %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode(errors="replace")

    def reply(self):
        """One reply: (code, text of all lines joined by newlines)."""
        lines = []
        while True:
            line = self._line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), "\n".join(l[4:] for l in lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def ehlo(self, name="client.test"):
        return self.cmd("EHLO " + name)

    def closed(self, timeout=5.0):
        """True when the server closes the connection (after any pending replies)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def send_message(port, rcpts=("alice@example.test",), sender="sender@remote.test",
                 body=b"Subject: test\r\n\r\nhello\r\n"):
    """A whole transaction over a raw socket; returns the reply to the final dot."""
    c = Client(port)
    c.ehlo()
    assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>")[0] == 250, r
    assert c.cmd("DATA")[0] == 354
    c.send(body + b".\r\n")
    rep = c.reply()
    c.cmd("QUIT")
    c.close()
    return rep


def rcpt_replies(port, *addrs):
    """The replies (code, text) to RCPT TO for addrs, in one transaction."""
    c = Client(port)
    c.ehlo()
    assert c.cmd("MAIL FROM:<sender@remote.test>")[0] == 250
    out = [c.cmd(f"RCPT TO:<{a}>") for a in addrs]
    c.cmd("QUIT")
    c.close()
    return out


def rcpt_codes(port, *addrs):
    """The reply codes to RCPT TO for addrs, in one transaction."""
    return [r[0] for r in rcpt_replies(port, *addrs)]


class LoopbackServer:
    """A scripted TCP peer on 127.0.0.1 (a mailbox server, a downstream):
    accepts on a thread, runs self.session(conn) on a thread per
    connection, counts connections; stop() closes everything. Subclasses
    write session()."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.connections = 0
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def target(self):
        return f"smtp:127.0.0.1:{self.port}"

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn = self.sock.accept()[0]
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            self.conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            self.session(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def session(self, conn):
        raise NotImplementedError

    def stop(self):
        self.stopping.set()
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()


class ScriptedMailbox(LoopbackServer):
    """A mailbox server that answers every command with 250, except what it
    is told to hold: RCPT (silent_rcpt: never answered) or each message's
    final dot (silent_dot: never answered; hold_dot: answered once the test
    sets release). waiting is set when a command is being held."""

    def __init__(self, silent_rcpt=False, silent_dot=False, hold_dot=False):
        self.silent_rcpt = silent_rcpt
        self.silent_dot = silent_dot
        self.hold_dot = hold_dot
        self.waiting = threading.Event()
        self.release = threading.Event()
        super().__init__()

    def session(self, conn):
        f = conn.makefile("rb")
        in_data = False
        conn.sendall(b"220 scripted ESMTP\r\n")
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if in_data:
                if line == b".":
                    in_data = False
                    if self.silent_dot or self.hold_dot:
                        self.waiting.set()
                    if self.hold_dot:
                        self.release.wait(10)
                        self.release.clear()
                    if not self.silent_dot:
                        conn.sendall(b"250 2.0.0 ok\r\n")
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"LHLO"):
                conn.sendall(b"250-scripted\r\n250 PIPELINING\r\n")
            elif verb == b"RCPT" and self.silent_rcpt:
                self.waiting.set()
            elif verb == b"DATA":
                in_data = True
                conn.sendall(b"354 go\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 ok\r\n")
