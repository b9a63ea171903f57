#!/usr/bin/python3
"""Relay throughput: smtp-source into smtp-sink directly, and through mxguard,
Haraka (smtp_forward) and a private Postfix, all relaying to the same sink,
in one run on this machine.

    ./mxg bench relay [--messages N] [--size BYTES] [--sessions 20,100]

Each peer accepts one valid recipient (u@example.test) from the same list and
refuses others. Messages per second are end to end: from the first
connection until the sink has counted every message. Haraka and mxguard
relay before answering (no queue); Postfix queues and relays.
"""
import argparse
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parent
sys.path.insert(0, str(TOP / "tests" / "integration"))
from conftest_util import free_port, wait_port  # noqa: E402
from peers import Postfix  # noqa: E402

RCPT = "u@example.test"
OUT = TOP / "bench" / "out"


class CountingSink:
    """smtp-sink with -c: its running counter tells how many messages arrived."""

    def __init__(self, work):
        self.port = free_port()
        self.out = work / "sink.out"
        self.fh = open(self.out, "wb")
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{self.port}",
                                      "2000"], stdout=self.fh, stderr=subprocess.STDOUT)
        wait_port(self.port)

    def count(self):
        m = re.findall(rb"mesg=(\d+)", self.out.read_bytes()[-400:])
        return int(m[-1]) if m else 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.fh.close()


def smtp_source(port, sessions, messages, size):
    t = time.time()
    r = subprocess.run(["smtp-source", "-s", str(sessions), "-l", str(size), "-m", str(messages),
                        "-f", "sender@remote.test", "-t", RCPT, f"127.0.0.1:{port}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {r.stderr.strip()}")
    return time.time() - t


def run_one(name, port, sink, sessions, messages, size):
    before = sink.count()
    t0 = time.time()
    smtp_source(port, sessions, messages, size)
    deadline = time.time() + 600
    while sink.count() < before + messages and time.time() < deadline:
        time.sleep(0.01)
    elapsed = time.time() - t0
    got = sink.count() - before
    if got != messages:
        print(f"  {name}: only {got} of {messages} messages arrived", file=sys.stderr)
    return messages / elapsed if got == messages else 0.0, got


# ---- peers ---------------------------------------------------------------------

def start_mxguard(work, sink_port, extra=""):
    """mxguard relaying to the sink on sink_port; extra: more configuration
    lines (bench/queue.py: delivery = "queue")."""
    port = free_port()
    (work / "rcpts").write_text(RCPT + "\n")
    conf = work / "mxguard.conf"
    conf.write_text(f"""
listen = ["127.0.0.1:{port}"];
hostname = "mx.bench.test";
domains = ["example.test"];
recipients = {{ file = "{work}/rcpts"; }};
store = {{ path = "{work}/store"; }};
downstream = "smtp:127.0.0.1:{sink_port}";
limits = {{ connections_per_ip = 100000; }};
{extra}
""")
    log = open(work / "mxguard.log", "wb")
    p = subprocess.Popen([str(TOP / "build" / "src" / "mxguard"), "serve", "-c", str(conf)],
                         stdout=log, stderr=log)
    wait_port(port)
    return p, port


def haraka_install():
    d = OUT / "haraka"
    exe = d / "node_modules" / ".bin" / "haraka"
    if not exe.exists():
        d.mkdir(parents=True, exist_ok=True)
        print("  installing Haraka from npm ...", file=sys.stderr)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "Haraka"],
                       cwd=d, check=True)
    return exe


RCPT_PLUGIN = """
// Accept only the addresses listed in config/rcpt_list (the benchmark's
// recipient list), as mxguard and Postfix do.
exports.register = function () {
    this.valid = new Set(this.config.get('rcpt_list', 'list').map(a => a.toLowerCase()));
};
exports.hook_rcpt = function (next, connection, params) {
    const rcpt = params[0];
    const addr = (rcpt.user + '@' + rcpt.host).toLowerCase();
    if (this.valid.has(addr)) return next(OK);
    return next(DENY, 'user unknown');
};
"""


def start_haraka(work, sink_port):
    exe = haraka_install()
    inst = work / "haraka"
    subprocess.run([str(exe), "-i", str(inst)], check=True, capture_output=True)
    port = free_port()
    cfg = inst / "config"
    (cfg / "smtp.ini").write_text(f"listen=127.0.0.1:{port}\nnodes=cpus\n")
    (cfg / "plugins").write_text("rcpt_list\nqueue/smtp_forward\n")
    (cfg / "rcpt_list").write_text(RCPT + "\n")
    (cfg / "host_list").write_text("example.test\n")
    (cfg / "smtp_forward.ini").write_text(f"host=127.0.0.1\nport={sink_port}\nenable_outbound=false\n")
    (inst / "plugins" / "rcpt_list.js").write_text(RCPT_PLUGIN)
    log = open(work / "haraka.log", "wb")
    p = subprocess.Popen([str(exe), "-c", str(inst)], stdout=log, stderr=log,
                         start_new_session=True)
    wait_port(port, timeout=60)
    time.sleep(2)  # let every cluster worker come up
    return p, port


def start_postfix(sink_port):
    pf = Postfix(mode="relay", mailboxes=[RCPT], relayhost=sink_port,
                 extra_main="smtpd_client_connection_count_limit = 0\n"
                            "smtpd_client_message_rate_limit = 0\n")
    return pf.start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=5120)
    ap.add_argument("--sessions", default="20,100")
    ap.add_argument("--peers", default="direct,mxguard,haraka,postfix")
    args = ap.parse_args()
    sessions = [int(s) for s in args.sessions.split(",")]
    peers = args.peers.split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-bench-", dir=OUT))
    sink = CountingSink(work)
    results = {}
    procs = []
    try:
        targets = {}
        if "direct" in peers:
            targets["direct"] = sink.port
        if "mxguard" in peers:
            p, port = start_mxguard(work, sink.port)
            procs.append(p)
            targets["mxguard"] = port
        if "haraka" in peers:
            p, port = start_haraka(work, sink.port)
            procs.append(p)
            targets["haraka"] = port
        pf = None
        if "postfix" in peers:
            pf = start_postfix(sink.port)
            targets["postfix"] = pf.port
        for name, port in targets.items():  # warm-up: pools, JIT, caches
            run_one(name, port, sink, 10, 200, args.size)
        for s in sessions:
            for name, port in targets.items():
                rate, got = run_one(name, port, sink, s, args.messages, args.size)
                results[(name, s)] = (rate, got)
                print(f"  {name:8s} sessions={s:<4d} {rate:8.0f} msg/s  ({got} delivered)",
                      file=sys.stderr)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM) if p.pid == os.getpgid(p.pid) else p.terminate()
            except ProcessLookupError:
                pass
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if "postfix" in peers and pf is not None:
            pf.stop()
        sink.stop()

    print(f"\nrelay benchmark: {args.messages} messages of {args.size} bytes, one recipient, "
          f"{os.cpu_count()} cores")
    print(f"{'peer':10s}" + "".join(f"{'s=' + str(s):>14s}" for s in sessions))
    for name in targets:
        print(f"{name:10s}" + "".join(f"{results[(name, s)][0]:>10.0f} msg/s" for s in sessions))
    if "mxguard" in targets:
        print()
        for s in sessions:
            mx = results[("mxguard", s)][0]
            parts = []
            for other in targets:
                if other != "mxguard" and results[(other, s)][0] > 0:
                    o = results[(other, s)][0]
                    label = "of direct" if other == "direct" else f"x {other}"
                    parts.append(f"{100 * mx / o:.0f} % {label}" if other == "direct"
                                 else f"{mx / o:.1f} {label}")
            print(f"mxguard at {s} sessions: " + ", ".join(parts))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
