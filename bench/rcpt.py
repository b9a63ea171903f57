#!/usr/bin/python3
"""RCPT TO verdicts per second: mxguard with a warm answer cache, with the
LDAP replica, and with a cold cache against slapd, next to a private Postfix
whose relay_recipient_maps is the same slapd (postfix-ldap), same load, one
run on this machine.

    ./mxg bench rcpt [--users N] [--rcpts N] [--cold-rcpts N] [--sessions N] [--window N]

The load: bench/rcptload.c (compiled here), SESSIONS pipelined sessions
that send RCPT TO for guessed and existing addresses (half each) in turn,
RSET every 500. A verdict is a 250 or a 550; a 451 or anything else fails
the run. Cold: every RCPT is a directory lookup (the cache is off; an
unknown address costs two searches, the address and the @domain catch-all,
as in Postfix). Warm cache and replica are measured with one worker thread,
so their rates are per core; cold mxguard and Postfix use every core.
Targets: cold mxguard at least 2 x Postfix; warm cache and replica at least
50,000 verdicts a second per core.
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
from conftest_util import free_port, wait_for, wait_port  # noqa: E402
from peers import Postfix, Slapd  # noqa: E402

OUT = TOP / "bench" / "out"


def build_driver():
    exe = OUT / "rcptload"
    src = HERE / "rcptload.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
    return exe


def load(driver, port, addrs, rcpts, sessions, window, offset=0):
    r = subprocess.run([str(driver), "-p", str(port), "-c", str(sessions), "-n", str(rcpts),
                        "-f", str(addrs), "-w", str(window), "-b", "500", "-o", str(offset)],
                       capture_output=True, text=True, timeout=900)
    m = re.search(r"rcpts=(\d+) seconds=([\d.]+) rate=(\d+) 250=(\d+) 550=(\d+) 451=(\d+) "
                  r"other=(\d+)", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"rcptload failed ({r.returncode}): {r.stdout}{r.stderr}")
    return {"rate": int(m.group(3)), "secs": float(m.group(2)), "250": int(m.group(4)),
            "550": int(m.group(5))}


class Mx:
    def __init__(self, work, name, slapd, workers, cache, replica=False):
        self.dir = work / name
        self.dir.mkdir()
        self.port = free_port()
        rep = ('replica = { interval = "1h"; filter = "(mail=*)"; attributes = ["mail"]; };'
               if replica else "")
        (self.dir / "mxguard.conf").write_text(f"""
listen = ["127.0.0.1:{self.port}"];
hostname = "mx.bench.test";
domains = ["example.test"];
workers = {workers};
recipients = {{
  ldap = {{ uris = ["{slapd.uri}"]; base = "{slapd.SUFFIX}"; filter = "(mail=%s)";
           bind_dn = "{slapd.READER_DN}"; bind_password = "{slapd.READER_PW}"; {rep} }};
  cache = {{ positive_ttl = {cache}; negative_ttl = {cache}; }};
}};
store = {{ path = "{self.dir}/store"; }};
downstream = "smtp:127.0.0.1:9";
limits = {{ unknown_recipients = 100000; connections_per_ip = 10000; }};
""")
        self.log = open(self.dir / "mxguard.log", "wb")
        self.proc = subprocess.Popen([str(TOP / "build" / "src" / "mxguard"), "serve", "-c",
                                      str(self.dir / "mxguard.conf")],
                                     stdout=self.log, stderr=self.log)
        wait_port(self.port)

    def logtext(self):
        return (self.dir / "mxguard.log").read_text(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.log.close()


def start_postfix(slapd, work):
    cf = work / "ldap-rcpt.cf"
    cf.write_text(f"""server_host = {slapd.uri}
search_base = {slapd.SUFFIX}
query_filter = (mail=%s)
result_attribute = mail
bind = yes
bind_dn = {slapd.READER_DN}
bind_pw = {slapd.READER_PW}
version = 3
""")
    os.chmod(cf, 0o644)
    os.chmod(work, 0o755)
    pf = Postfix(mode="relay", mailboxes=[], relayhost=9, extra_main=f"""
relay_recipient_maps = ldap:{cf}
smtpd_hard_error_limit = 100000000
smtpd_soft_error_limit = 100000000
smtpd_error_sleep_time = 0
smtpd_junk_command_limit = 100000000
smtpd_recipient_limit = 1000
smtpd_recipient_overshoot_limit = 100000000
smtpd_client_connection_count_limit = 0
smtpd_client_recipient_rate_limit = 0
default_process_limit = 200
""")
    return pf.start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--rcpts", type=int, default=400000, help="RCPTs per warm/replica run")
    ap.add_argument("--cold-rcpts", type=int, default=40000, help="RCPTs per cold run")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--window", type=int, default=20, help="RCPTs in flight per session")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    driver = build_driver()
    work = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-bench-rcpt-", dir=OUT))
    addrs = work / "addrs"
    # existing and guessed addresses alternate; each appears once per pass
    with open(addrs, "w") as f:
        for i in range(args.users):
            f.write(f"user{i}@example.test\nguess{i}@example.test\n")
    print(f"rcpt benchmark: {args.users} users in slapd, {args.sessions} sessions x "
          f"{args.window} pipelined, half the addresses unknown, {os.cpu_count()} cores",
          file=sys.stderr)
    slapd = Slapd(users=args.users).start()
    res = {}
    try:
        # Postfix, cold (it has no cache)
        pf = start_postfix(slapd, work)
        try:
            load(driver, pf.port, addrs, 2000, args.sessions, args.window)  # warm-up: processes
            res["postfix cold"] = load(driver, pf.port, addrs, args.cold_rcpts, args.sessions,
                                       args.window, offset=4000)
        finally:
            pf.stop()
        print(f"  postfix cold:  {res['postfix cold']['rate']:8d} verdicts/s", file=sys.stderr)
        # mxguard, cold: no cache, every core
        mx = Mx(work, "cold", slapd, 0, 0)
        try:
            load(driver, mx.port, addrs, 2000, args.sessions, args.window)
            res["mxguard cold"] = load(driver, mx.port, addrs, args.cold_rcpts, args.sessions,
                                       args.window, offset=4000)
        finally:
            mx.stop()
        print(f"  mxguard cold:  {res['mxguard cold']['rate']:8d} verdicts/s", file=sys.stderr)
        # mxguard, warm cache: one worker; a first pass fills the cache
        mx = Mx(work, "cache", slapd, 1, 3600)
        try:
            load(driver, mx.port, addrs, 2 * args.users, args.sessions, args.window)
            time.sleep(0.5)
            res["mxguard cache"] = load(driver, mx.port, addrs, args.rcpts, args.sessions,
                                        args.window)
        finally:
            mx.stop()
        print(f"  mxguard cache: {res['mxguard cache']['rate']:8d} verdicts/s (1 worker)",
              file=sys.stderr)
        # mxguard, replica: one worker; no directory lookups at all
        mx = Mx(work, "replica", slapd, 1, 0, replica=True)
        try:
            wait_for(lambda: "synced" in mx.logtext(), 60, "the replica's first sync")
            n0 = len(re.findall(r" SRCH ", slapd.log()))
            res["mxguard replica"] = load(driver, mx.port, addrs, args.rcpts, args.sessions,
                                          args.window)
            asked = len(re.findall(r" SRCH ", slapd.log())) - n0
        finally:
            mx.stop()
        print(f"  mxguard replica: {res['mxguard replica']['rate']:6d} verdicts/s (1 worker, "
              f"{asked} directory searches)", file=sys.stderr)
    finally:
        slapd.cleanup()

    print(f"\nrcpt benchmark: {args.users} users, {args.sessions} sessions x {args.window} "
          f"pipelined RCPTs, half unknown, {os.cpu_count()} cores")
    for name in ("postfix cold", "mxguard cold", "mxguard cache", "mxguard replica"):
        r = res[name]
        per = " (1 worker: per core)" if name in ("mxguard cache", "mxguard replica") else ""
        print(f"{name:16s} {r['rate']:>9d} verdicts/s  ({r['250']} x 250, {r['550']} x 550 in "
              f"{r['secs']:.1f} s){per}")
    ratio = res["mxguard cold"]["rate"] / max(1, res["postfix cold"]["rate"])
    print(f"\ncold lookups: mxguard {ratio:.1f} x postfix (target: at least 2 x)")
    for name in ("mxguard cache", "mxguard replica"):
        rate = res[name]["rate"]
        print(f"{name}: {rate} verdicts/s per core (target: at least 50000) "
              f"{'ok' if rate >= 50000 else 'BELOW TARGET'}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
