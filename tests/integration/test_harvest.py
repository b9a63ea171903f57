# The dictionary-attack defence: one client (127.0.0.1) sends 10,000 RCPT TO
# of guessed names over many connections; it is tarpitted, then blocked and
# refused at connect, while a valid sender from another address (127.0.0.2)
# is served normally throughout. Then `mxguard blocks list|remove`.
import re
import socket
import statistics
import subprocess
import threading
import time
import urllib.request

from conftest import MXGUARD, Client, free_port

TARPIT_AFTER, BLOCK_AFTER, DELAY_MS, PER_SESSION = 100, 600, 10, 100
GUESSES = 10000


class SourceClient(Client):
    """Client from a chosen loopback source address."""

    def __init__(self, port, source, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        t = time.monotonic()
        self.greeting = self.reply()
        self.greet_s = time.monotonic() - t


def harvester(port, stats):
    """Guesses in sessions of PER_SESSION recipients until GUESSES were
    tried (a refused connection counts its whole batch as refused)."""
    tried = n = 0
    while tried < GUESSES:
        c = SourceClient(port, "127.0.0.1")
        stats["greet"].append((stats["rcpts"], c.greet_s))
        if c.greeting[0] != 220:
            stats["refused"].append(c.greeting)
            assert c.closed()
            c.close()
            tried += PER_SESSION
            continue
        c.ehlo("harvester.test")
        c.cmd("MAIL FROM:<spam@harvester.test>")
        for _ in range(PER_SESSION):
            t = time.monotonic()
            c.send(f"RCPT TO:<guess{n}@example.test>\r\n")
            n += 1
            tried += 1
            try:
                code, text = c.reply()
            except ConnectionError:
                break
            stats["rcpts"] += 1
            stats["lat"].append(time.monotonic() - t)
            stats["codes"][code] = stats["codes"].get(code, 0) + 1
            if code in (421, 554):
                stats["last"].append((code, text))
                if text.startswith("4.7.1 Too many unknown recipients, closing"):
                    continue  # limits.unknown_recipients: the session's own limit
                break
        c.close()


def valid_sender(port, stop, stats):
    while not stop.is_set():
        c = SourceClient(port, "127.0.0.2")
        stats["greet"].append(c.greet_s)
        assert c.greeting[0] == 220, c.greeting
        c.ehlo("good.test")
        assert c.cmd("MAIL FROM:<friend@good.test>")[0] == 250
        t = time.monotonic()
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        stats["lat"].append(time.monotonic() - t)
        # a typo now and then is not an attack
        if stats["sent"] % 10 == 0:
            assert c.cmd("RCPT TO:<alcie@example.test>")[0] == 550
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: hello\r\n\r\nfrom a friend\r\n.\r\n")
        assert c.reply()[0] == 250
        c.cmd("QUIT")
        c.close()
        stats["sent"] += 1
        time.sleep(0.02)


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return int(re.search(rf"^{name} (\d+)$", text, re.MULTILINE).group(1))


def test_dictionary_attack(make_mx, sink):
    admin = free_port()
    mx = make_mx(sink.target, extra=f"""
admin = {{ listen = "127.0.0.1:{admin}"; }};
harvest = {{ window = 600; tarpit_after = {TARPIT_AFTER}; tarpit_delay = "{DELAY_MS}ms";
            block_after = {BLOCK_AFTER}; block_time = 3600; block_code = 554; }};
limits = {{ unknown_recipients = {PER_SESSION}; connections_per_ip = 1000; }};
""")
    bad = {"greet": [], "rcpts": 0, "lat": [], "codes": {}, "refused": [], "last": []}
    good = {"greet": [], "lat": [], "sent": 0}
    stop = threading.Event()
    errors = []

    def run_good():
        try:
            valid_sender(mx.port, stop, good)
        except Exception as e:  # reported below
            errors.append(e)
    t = threading.Thread(target=run_good)
    t.start()
    t0 = time.monotonic()
    try:
        harvester(mx.port, bad)
    finally:
        stop.set()
        t.join(30)
    elapsed = time.monotonic() - t0
    assert not errors, errors

    # tarpitted: the first TARPIT_AFTER answers are quick, the next ones wait
    fast = bad["lat"][:TARPIT_AFTER - 5]
    slow = bad["lat"][TARPIT_AFTER + 5:BLOCK_AFTER - 5]
    assert statistics.median(fast) < DELAY_MS / 1000 / 2, statistics.median(fast)
    # never shorter than configured (timers keep precise time: src/net/evbase.h)
    assert min(slow) >= DELAY_MS / 1000, min(slow)
    # so is the greeting of a tarpitted client
    later = [g for n, g in bad["greet"] if TARPIT_AFTER < n < BLOCK_AFTER]
    assert later and min(later) >= DELAY_MS / 1000 * 0.8
    # blocked at the crossing: the session ends with the block reply
    assert bad["rcpts"] == BLOCK_AFTER + 1
    assert bad["codes"][550] == BLOCK_AFTER
    assert bad["last"][-1] == (554, "5.7.1 <guess600@example.test>: Too many unknown recipients "
                                     "from your address; blocked, try again later")
    # then refused at connect, for the rest of the 10,000
    left = GUESSES - (BLOCK_AFTER + 1)
    assert len(bad["refused"]) == (left + PER_SESSION - 1) // PER_SESSION  # 94 connections
    assert set(bad["refused"]) == {(554, "5.7.1 Too many unknown recipients from your address; "
                                         "blocked, try again later")}
    # the valid sender was served normally throughout: never tarpitted (a
    # loaded test machine may delay a reply now and then, never most)
    assert good["sent"] >= 5, good
    assert statistics.median(good["lat"]) < DELAY_MS / 1000 / 2
    assert sum(x >= DELAY_MS / 1000 for x in good["lat"]) <= len(good["lat"]) // 20
    assert len(sink.wait_messages(good["sent"], 20)) >= good["sent"]

    log = mx.log()
    assert len(re.findall(r"harvest: block client=127\.0\.0\.1 key=127\.0\.0\.1 "
                          rf"unknown_recipients={BLOCK_AFTER + 1} window=600s block_time=3600s "
                          r"reply=554", log)) == 1
    assert len(re.findall(r"harvest: refused client=127\.0\.0\.1 key=127\.0\.0\.1 blocked_until=",
                          log)) == len(bad["refused"])
    assert "client=127.0.0.2" not in "\n".join(l for l in log.splitlines() if "harvest" in l)

    # the operator's view, while the gateway runs
    r = subprocess.run([MXGUARD, "blocks", "-c", str(mx.conf), "list"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"127\.0\.0\.1 (\S+Z) (\S+Z) (\d+)\n", r.stdout)
    assert m and int(m.group(3)) == BLOCK_AFTER + 1, r.stdout
    r = subprocess.run([MXGUARD, "blocks", "-c", str(mx.conf), "remove", "127.0.0.1"],
                       capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, "127.0.0.1: block removed\n")
    # welcome again, and its count was forgotten: neither the greeting nor an
    # unknown recipient is tarpitted
    tarpitted = metric(admin, "mxguard_harvest_tarpit_total")
    c = SourceClient(mx.port, "127.0.0.1")
    assert c.greeting[0] == 220
    c.ehlo()
    c.cmd("MAIL FROM:<spam@harvester.test>")
    assert c.cmd("RCPT TO:<one-more-guess@example.test>")[0] == 550
    c.close()
    assert metric(admin, "mxguard_harvest_tarpit_total") == tarpitted
    r = subprocess.run([MXGUARD, "blocks", "-c", str(mx.conf), "list"], capture_output=True,
                       text=True)
    assert (r.returncode, r.stdout) == (0, "")
    r = subprocess.run([MXGUARD, "blocks", "-c", str(mx.conf), "remove", "127.0.0.1"],
                       capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (1, "127.0.0.1: not blocked (its count is reset)\n")

    mx.stop()
    stats = re.findall(r"stats .*", mx.log())[-1]
    assert " harvest.block=1 " in stats
    assert f" harvest.refused={len(bad['refused'])}" in stats
    tarpitted = int(re.search(r" harvest.tarpit=(\d+)", stats).group(1))
    assert tarpitted >= BLOCK_AFTER - TARPIT_AFTER
    print(f"harvest: {bad['rcpts']} RCPTs answered, {len(bad['refused'])} connections refused, "
          f"{good['sent']} good messages, {elapsed:.1f} s")
