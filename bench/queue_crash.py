#!/usr/bin/python3
"""The long crash test: steady load into mxguard in queue mode, SIGKILL at
random moments many times, restart each time; at the end every message
that got 250 must have arrived at the sink at least once.  Prints how many
arrived twice (see docs/design.md for when that happens).

    ./mxg bench queue_crash [--kills 50] [--clients 8] [--seed 1]
"""
import argparse
import pathlib
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parent
sys.path.insert(0, str(TOP / "tests" / "integration"))
from conftest_util import free_port, wait_for, wait_port  # noqa: E402

OUT = TOP / "bench" / "out"


def send(port, tag):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise ConnectionError
            if line[3:4] != b"-":
                return int(line[:3])
    if reply() != 220:
        raise ConnectionError
    for cmd in (b"EHLO c", b"MAIL FROM:<s@remote.test>", b"RCPT TO:<u@example.test>", b"DATA"):
        s.sendall(cmd + b"\r\n")
        reply()
    s.sendall(b"Subject: " + tag + b"\r\nX-Tag: " + tag + b"\r\n\r\n" + b"x" * 2000 + b"\r\n.\r\n")
    code = reply()
    s.close()
    return code


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-crash-", dir=OUT))
    work.chmod(0o777)  # smtp-sink runs as nobody and writes its dump here
    sport, port = free_port(), free_port()
    dump = work / "dump"
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-D", str(dump), f"127.0.0.1:{sport}",
                             "1000"], stdout=subprocess.DEVNULL, stderr=open(work / "sink.err", "wb"))
    wait_port(sport)
    (work / "rcpts").write_text("u@example.test\n")
    conf = work / "mx.conf"
    conf.write_text(f"""listen = ["127.0.0.1:{port}"]; domains = ["example.test"];
recipients = {{ file = "{work}/rcpts"; }}; downstream = "smtp:127.0.0.1:{sport}";
delivery = "queue"; queue = {{ path = "{work}/queue"; retry = ["1s"]; }};
store = {{ path = "{work}/store"; }}; log_level = "warn";
limits = {{ connections_per_ip = 1000; }};
""")
    log = open(work / "mx.log", "ab")

    def start():
        p = subprocess.Popen([str(TOP / "build" / "src" / "mxguard"), "serve", "-c", str(conf)],
                             stdout=log, stderr=log)
        wait_port(port)
        return p

    mx = start()
    acked, lock, stop = set(), threading.Lock(), threading.Event()

    def client(n):
        i = 0
        while not stop.is_set():
            tag = f"c{n}-{i}".encode()
            i += 1
            try:
                if send(port, tag) == 250:
                    with lock:
                        acked.add(tag)
            except (OSError, ConnectionError):
                time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    for t in threads:
        t.start()
    rnd = random.Random(args.seed)
    for k in range(args.kills):
        time.sleep(rnd.uniform(0.05, 1.5))
        mx.send_signal(signal.SIGKILL)
        mx.wait()
        mx = start()
        print(f"\rkill {k + 1}/{args.kills}, {len(acked)} acknowledged", end="", file=sys.stderr)
    stop.set()
    for t in threads:
        t.join()
    q = lambda: subprocess.run([str(TOP / "build" / "src" / "mxguard"), "queue", "-c", str(conf),
                                "list"], capture_output=True, text=True).stdout
    wait_for(lambda: q() == "", timeout=120, what="queue drained")
    mx.terminate()
    mx.wait()
    sink.terminate()
    sink.wait()
    counts = {}
    for tag in re.findall(rb"X-Tag: (c\d+-\d+)", dump.read_bytes()):
        counts[tag] = counts.get(tag, 0) + 1
    lost = acked - set(counts)
    dups = sum(1 for v in counts.values() if v > 1)
    print(f"\ncrash test: {args.kills} SIGKILLs, {len(acked)} messages acknowledged, "
          f"{len(lost)} lost, {dups} delivered twice or more "
          f"({100.0 * dups / max(1, len(acked)):.2f} %), "
          f"{len(set(counts) - acked)} delivered without a 250 reaching the client")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
