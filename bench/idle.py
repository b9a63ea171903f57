#!/usr/bin/python3
"""Idle connections: hold N connections open after EHLO, measure mxguard's
resident memory, and time new clients (a whole transaction each, relayed to
smtp-sink) meanwhile.

    ./mxg bench idle [--connections 10000]

Connections come from 127.0.1.1 .. 127.0.1.250 (40 each), so mxguard's
default per-address limit (50) stays in force.
"""
import argparse
import pathlib
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parent
sys.path.insert(0, str(TOP / "tests" / "integration"))
from conftest_util import free_port, wait_port  # noqa: E402

OUT = TOP / "bench" / "out"


def rss_kib(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def open_idle(port, n):
    """Opens n connections and completes greeting + EHLO on each."""
    sel = selectors.DefaultSelector()
    socks = []
    state = {}
    for i in range(n):
        s = socket.socket()
        s.bind((f"127.0.1.{1 + i % 250}", 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
        state[s] = [0, b""]  # phase: 0 greeting, 1 ehlo reply, 2 done
        sel.register(s, selectors.EVENT_READ)
        if i % 500 == 499:  # do not overflow the listen backlog
            pump(sel, state, until=lambda: sum(v[0] == 2 for v in state.values()) >= i - 400)
    pump(sel, state, until=lambda: all(v[0] == 2 for v in state.values()))
    sel.close()
    return socks


def pump(sel, state, until, timeout=120):
    end = time.time() + timeout
    while not until():
        if time.time() > end:
            phases = [sum(v[0] == k for v in state.values()) for k in range(3)]
            raise TimeoutError(f"idle connections did not complete EHLO: {phases[0]} waiting for "
                               f"the greeting, {phases[1]} for the EHLO reply, {phases[2]} done")
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError("server closed an idle connection")
            st = state[s]
            st[1] += data
            while b"\r\n" in st[1]:
                line, _, st[1] = st[1].partition(b"\r\n")
                if line[3:4] == b"-":
                    continue
                if st[0] == 0:
                    if not line.startswith(b"220"):
                        raise RuntimeError(f"greeting: {line!r}")
                    s.send(b"EHLO idle.client.test\r\n")
                    st[0] = 1
                elif st[0] == 1:
                    st[0] = 2
                    sel.unregister(s)


def transaction(port):
    t = time.time()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if line[3:4] != b"-":
                return int(line[:3])
    assert reply() == 220
    for cmd, want in [(b"EHLO fresh.client.test", 250), (b"MAIL FROM:<a@remote.test>", 250),
                      (b"RCPT TO:<u@example.test>", 250), (b"DATA", 354),
                      (b"Subject: x\r\n\r\nhello\r\n.", 250), (b"QUIT", 221)]:
        s.sendall(cmd + b"\r\n")
        assert reply() == want, cmd
    s.close()
    return time.time() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=10000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 1000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, min(hard, want)), max(hard, want)))
    OUT.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-idle-", dir=OUT))
    sink_port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "1000"])
    wait_port(sink_port)
    port = free_port()
    (work / "rcpts").write_text("u@example.test\n")
    conf = work / "mxguard.conf"
    conf.write_text(f"""
listen = ["127.0.0.1:{port}"];
domains = ["example.test"];
recipients = {{ file = "{work}/rcpts"; }};
store = {{ path = "{work}/store"; }};
downstream = "smtp:127.0.0.1:{sink_port}";
log_level = "warn";
limits = {{ connections = {args.connections + 1000}; }};
""")
    mx = subprocess.Popen([str(TOP / "build" / "src" / "mxguard"), "serve", "-c", str(conf)],
                          stderr=open(work / "mxguard.log", "wb"))
    try:
        wait_port(port)
        base_lat = [transaction(port) for _ in range(20)]
        rss0 = rss_kib(mx.pid)
        t = time.time()
        socks = open_idle(port, args.connections)
        opened = time.time() - t
        time.sleep(1)
        rss = rss_kib(mx.pid)
        lat = [transaction(port) for _ in range(50)]
        peak = rss_kib(mx.pid, "VmHWM")
        for s in socks:
            s.close()
    except BaseException:
        print(f"mxguard's log: {work / 'mxguard.log'}", file=sys.stderr)
        raise
    finally:  # never leave the servers behind
        mx.terminate()
        mx.wait(60)
        sink.terminate()
        sink.wait()
    print(f"\nidle benchmark: {args.connections} connections after EHLO "
          f"(opened in {opened:.1f} s)")
    print(f"mxguard resident memory: {rss0 / 1024:.1f} MiB before, {rss / 1024:.1f} MiB holding "
          f"them, {peak / 1024:.1f} MiB peak  ({(rss - rss0) * 1024 / args.connections:.0f} bytes "
          f"per connection); target: under 64 MiB")
    print(f"new client, whole transaction: median {1000 * statistics.median(lat):.1f} ms, "
          f"max {1000 * max(lat):.1f} ms while holding them "
          f"(median {1000 * statistics.median(base_lat):.1f} ms without)")


if __name__ == "__main__":
    main()
