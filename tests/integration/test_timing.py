# Pregreet and timeouts, with short values in the test configuration.
import time

from conftest import Client


def test_pregreet_rejected(make_mx, sink):
    mx = make_mx(sink.target, extra='smtp = { greet_delay = "700ms"; };')
    c = Client(mx.port, greeting=False)
    c.send(b"EHLO bot.test\r\n")          # talks before the greeting
    assert c.reply() == (554, "5.5.1 Protocol error: client talked before the greeting")
    assert c.closed()
    mx.wait_log(r'pregreet client=127\.0\.0\.1 data="EHLO bot.test\\x0d\\x0a"')
    # a patient client is served
    c = Client(mx.port)
    assert c.greeting[0] == 220
    assert c.ehlo()[0] == 250


def test_command_timeout(make_mx, sink):
    mx = make_mx(sink.target, timeouts={"command": '"1s"'})
    c = Client(mx.port)
    c.ehlo()
    start = time.time()
    assert c.reply() == (421, "4.4.2 Timeout exceeded, closing connection")
    assert 0.8 < time.time() - start < 5
    assert c.closed()
    mx.wait_log('reason="timeout"')


def test_slow_trickle_times_out(make_mx, sink):
    """The command timeout is a deadline: a byte every 300 ms does not keep a
    session alive forever."""
    mx = make_mx(sink.target, timeouts={"command": '"1s"'})
    c = Client(mx.port)
    start = time.time()
    try:
        for ch in b"EHLO slow.client.test":
            c.send(bytes([ch]))
            time.sleep(0.3)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert c.reply()[0] == 421
    assert time.time() - start < 4


def test_data_timeout(make_mx, sink):
    mx = make_mx(sink.target, timeouts={"data": '"1s"'})
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    c.cmd("RCPT TO:<alice@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: half a message\r\n")
    assert c.reply()[0] == 421
    assert c.closed()
    mx.wait_log('reason="timeout after DATA"')
    assert sink.messages() == []


def test_command_timeout_after_a_message(make_mx, sink):
    """The command deadline runs again once a message is answered (and once
    an answer that came later is given): nothing timed out a client silent
    after its 250, which held its connection slot for good (found in
    review, 2026-11-29)."""
    mx = make_mx(sink.target, timeouts={"command": '"1s"'})
    for body in (b"Subject: x\r\n\r\nhi\r\n.\r\n", b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n"):
        c = Client(mx.port)
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(body)
        assert c.reply()[0] in (250, 554)
        t = time.monotonic()
        assert c.reply()[0] == 421  # 4.4.2 Timeout exceeded
        assert 0.5 < time.monotonic() - t < 5
        assert c.closed()
