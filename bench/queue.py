#!/usr/bin/python3
"""Queue-mode throughput: smtp-source into mxguard (delivery = "queue") and
into a private Postfix, both flushing every message to disk before 250 and
then relaying to the same smtp-sink; end to end (until the sink has every
message), one run, the ratio printed.

    ./mxg bench queue [--messages N] [--sessions 20,100]
"""
import argparse
import os
import pathlib
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import relay  # noqa: E402
from relay import OUT, CountingSink, run_one, start_postfix  # noqa: E402


def start_mxguard_queue(work, sink_port):
    """The relay benchmark's mxguard, with the durable queue."""
    return relay.start_mxguard(work, sink_port, extra=f"""delivery = "queue";
queue = {{ path = "{work}/queue"; }};""")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=5120)
    ap.add_argument("--sessions", default="20,100")
    args = ap.parse_args()
    sessions = [int(s) for s in args.sessions.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-qbench-", dir=OUT))
    sink = CountingSink(work)
    mx, mport = start_mxguard_queue(work, sink.port)
    pf = start_postfix(sink.port)
    targets = {"mxguard": mport, "postfix": pf.port}
    res = {}
    try:
        for name, port in targets.items():
            run_one(name, port, sink, 10, 200, args.size)
        for s in sessions:
            for name, port in targets.items():
                res[(name, s)] = run_one(name, port, sink, s, args.messages, args.size)
                print(f"  {name:8s} sessions={s:<4d} {res[(name, s)][0]:8.0f} msg/s", file=sys.stderr)
    finally:
        mx.terminate()
        mx.wait(60)
        pf.stop()
        sink.stop()
    print(f"\nqueue benchmark: {args.messages} messages of {args.size} bytes, flushed to disk "
          f"before 250, relayed to smtp-sink, {os.cpu_count()} cores")
    print(f"{'peer':10s}" + "".join(f"{'s=' + str(s):>14s}" for s in sessions))
    for name in targets:
        print(f"{name:10s}" + "".join(f"{res[(name, s)][0]:>10.0f} msg/s" for s in sessions))
    for s in sessions:
        m, p = res[("mxguard", s)][0], res[("postfix", s)][0]
        print(f"mxguard at {s} sessions: {m / p:.1f} x postfix" if p else "postfix failed")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
