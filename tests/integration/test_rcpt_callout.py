# Recipient verification by callout: mxguard asks the mailbox server (a real
# Postfix) with RCPT TO, caches the answers, and answers 451 when the server
# cannot be asked and nothing is cached.
import re
import time

import pytest

from conftest import Client, LoopbackServer, rcpt_codes, rcpt_replies, send_message, wait_for
from peers import Postfix


@pytest.fixture(scope="module")
def postfix():
    pf = Postfix(mode="mailbox", mailboxes=["alice@example.test", "bob@example.test"]).start()
    yield pf
    pf.stop()


def rejected_at_postfix(pf, addr):
    return len(re.findall(rf"(?:NOQUEUE|[0-9A-F]+): reject: RCPT from \S+: 550 5\.1\.1 "
                          rf"<{re.escape(addr)}>", pf.log()))


def test_callout_answers_and_cache(make_mx, postfix):
    target = f"smtp:127.0.0.1:{postfix.port}"
    mx = make_mx(target, recipients_conf='callout = {}; cache = { positive_ttl = 60; '
                                         'negative_ttl = 60; }; timeout = "3s";')
    assert rcpt_replies(mx.port, "alice@example.test", "nobody@example.test") == \
        [(250, "2.1.5 Recipient ok"),
         (550, "5.1.1 <nobody@example.test>: Recipient address rejected: user unknown")]
    wait_for(lambda: rejected_at_postfix(postfix, "nobody@example.test") == 1, 10,
             "Postfix logs the probe")
    mx.wait_log(r"callout: connected to smtp:127\.0\.0\.1:\d+")
    # the whole address only: Postfix (no recipient_delimiter here) says no
    assert rcpt_codes(mx.port, "alice+tag@example.test") == [550]
    # a message for a verified recipient is relayed as usual; the probes sent none
    assert send_message(mx.port, rcpts=["bob@example.test"])[0] == 250
    [m] = postfix.wait_delivered("bob@example.test", 1)
    assert b"Subject: test" in m
    assert postfix.delivered("alice@example.test") == []
    time.sleep(0.2)  # cache writes are batched
    # cached: asking again does not reach Postfix
    assert rcpt_codes(mx.port, "nobody@example.test", "alice@example.test") == [550, 250]
    time.sleep(0.5)
    assert rejected_at_postfix(postfix, "nobody@example.test") == 1


def test_callout_many_and_server_down(make_mx, postfix):
    target = f"smtp:127.0.0.1:{postfix.port}"
    mx = make_mx(target, recipients_conf='callout = {}; cache = { positive_ttl = 60; '
                                         'negative_ttl = 60; }; timeout = "3s";')
    # more refusals than Postfix's error limits allow on one connection, and
    # more probes than one transaction holds: pipelined from 10 sessions
    clients = []
    for i in range(10):
        c = Client(mx.port)
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        c.send("".join(f"RCPT TO:<{a}>\r\n" for j in range(8)
                       for a in (f"guess{i}-{j}@example.test", "alice@example.test")))
        clients.append(c)
    for c in clients:
        got = [c.reply()[0] for _ in range(16)]
        assert got == [550, 250] * 8, got
        c.close()
    time.sleep(0.2)
    postfix.postfix("stop")
    try:
        time.sleep(0.5)
        # cached answers go on; a new address cannot be verified: 451
        assert rcpt_codes(mx.port, "alice@example.test", "guess3-3@example.test",
                     "new@example.test") == [250, 550, 451]
        mx.wait_log(r"callout smtp:127\.0\.0\.1:\d+: (cannot reach|connection lost)")
    finally:
        postfix.start()
    wait_for(lambda: rcpt_codes(mx.port, "new2@example.test") == [550], 15, "callout recovers")
    # the 451 was not cached: the address gets a real answer now (each worker
    # thread has its own back-off, so allow the other one to recover too)
    wait_for(lambda: rcpt_codes(mx.port, "new@example.test") == [550], 15, "new@ answered")


def test_callout_config_errors(make_mx, sink, tmp_path):
    mail = tmp_path / "mail"
    mx = make_mx(f"file:{mail}", start=False, recipients_conf="callout = {};")
    import subprocess
    from conftest import MXGUARD
    r = subprocess.run([MXGUARD, "check-config", str(mx.conf)], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"recipients.callout: target \"file:{mail}\" must be smtp:HOST:PORT" in r.stderr
    mx.write_config(sink.target)
    mx.recipients_conf = 'callout = {}; file = "x";'
    mx.write_config(sink.target)
    r = subprocess.run([MXGUARD, "check-config", str(mx.conf)], capture_output=True, text=True)
    assert r.returncode == 1 and "names both" in r.stderr, r.stderr


class FakeMailbox(LoopbackServer):
    """A mailbox server whose reply to RCPT TO:<LOCAL@...> is REPLIES[LOCAL]
    (one line, as is, malformed or not)."""

    def __init__(self, replies):
        self.replies = replies
        super().__init__()

    def session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 fake ESMTP\r\n")
        for raw in f:
            line = raw.decode().strip()
            verb = line[:4].upper()
            if verb == "QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            if verb == "RCPT":
                local = line.split("<", 1)[1].split("@", 1)[0]
                conn.sendall(self.replies[local].encode() + b"\r\n")
            else:
                conn.sendall(b"250 ok\r\n")


def test_callout_reply_codes(make_mx):
    """Only 550, 551 and 553 mean "user unknown"; other refusals (a relay
    denial from a misconfigured callout), 4xx and malformed replies are 451:
    a reply that only looks like 200 or 550 is neither."""
    cases = {"ok": ("250 2.1.5 ok", 250), "unknown": ("550 5.1.1 unknown", 550),
             "moved": ("551 5.1.6 moved", 550), "syntax": ("553 5.1.3 bad", 550),
             "relay": ("554 5.7.1 relay access denied", 451), "busy": ("450 4.2.1 busy", 451),
             "odd200": ("2/: looks like 200", 451), "odd550": ("54: looks like 550", 451),
             "short": ("25", 451)}
    fake = FakeMailbox({k: v[0] for k, v in cases.items()})
    try:
        mx = make_mx(f"smtp:127.0.0.1:{fake.port}", recipients_conf=(
            'callout = {}; cache = { positive_ttl = 0; negative_ttl = 0; }; timeout = "2s";'))
        for local, (_, want) in cases.items():
            assert rcpt_codes(mx.port, f"{local}@example.test") == [want], local
    finally:
        fake.stop()


def test_callout_server_always_closing(make_mx):
    """A mailbox server that answers every RCPT with 421 is asked again
    once, on a new connection, then the recipient gets 451: no reconnecting
    until the lookup times out."""
    fake = FakeMailbox({"closing": "421 4.3.2 shutting down"})
    try:
        mx = make_mx(f"smtp:127.0.0.1:{fake.port}", recipients_conf=(
            'callout = {}; cache = { positive_ttl = 0; negative_ttl = 0; }; timeout = "10s";'))
        t = time.monotonic()
        assert rcpt_codes(mx.port, "closing@example.test") == [451]
        assert time.monotonic() - t < 5
        assert fake.connections <= 3, fake.connections
    finally:
        fake.stop()


def test_pipelined_group_waits_for_no_delayed_ack(make_mx, postfix):
    """A recipient answered later (a callout, as a directory lookup) sends
    its reply on its own: without TCP_NODELAY it waited for the client's
    delayed ACK, 40 ms on Linux, behind the MAIL reply already on the wire,
    every transaction (44 ms median here; 0.1 ms with it). The bound is
    loose: only that stall comes near it."""
    import statistics
    target = f"smtp:127.0.0.1:{postfix.port}"
    mx = make_mx(target, recipients_conf='callout = {}; cache = { positive_ttl = 0; '
                                         'negative_ttl = 0; }; timeout = "3s";')
    took = []
    for _ in range(15):  # no cache: each RCPT is a callout, answered later
        c = Client(mx.port)
        assert c.ehlo()[0] == 250
        t0 = time.monotonic()
        c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        codes = [c.reply()[0] for _ in range(3)]
        took.append(time.monotonic() - t0)
        assert codes == [250, 250, 354]
        c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
        c.reply()
        c.cmd("QUIT")
    assert statistics.median(took) < 0.030, [round(t * 1000, 1) for t in took]
