# A forced stop (a second SIGTERM) while sessions wait for a hook that will
# not answer in time: a recipient lookup at a mailbox server that never
# replies to RCPT, and an end of DATA at a downstream that never replies to
# the final dot.  The worker's loop ends with those hooks pending; the
# sessions must still be released (no leak, no use of freed memory when the
# pending operations are answered at shutdown) and the gateway exits 0.
# The make_mx fixture fails the test on any sanitizer report (ASan build).
import signal
import socket
import time

from conftest import Client, ScriptedMailbox


def forced_stop(mx):
    mx.signal(signal.SIGTERM)
    mx.wait_log("shutdown: SIGTERM received")
    mx.signal(signal.SIGTERM)
    mx.wait_log("shutdown: second signal; closing now")
    assert mx.proc.wait(20) == 0
    assert "mxguard stopped" in mx.log()


def test_forced_stop_during_recipient_lookup(make_mx, sink):
    peer = ScriptedMailbox(silent_rcpt=True)
    try:
        mx = make_mx(sink.target, recipients_conf=(
            f'callout = {{ target = "smtp:127.0.0.1:{peer.port}"; }}; '
            'cache = { positive_ttl = 0; negative_ttl = 0; }; timeout = "60s";'))
        clients = []
        for i in range(3):
            c = Client(mx.port)
            c.ehlo()
            assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
            c.send(f"RCPT TO:<user{i}@example.test>\r\n".encode())
            clients.append(c)
        assert peer.waiting.wait(10), "the lookup never reached the mailbox server"
        forced_stop(mx)
        for c in clients:
            assert c.closed()
        # the recipients were not refused, the sessions were cut: no reject
        # line names them
        log = mx.log()
        assert log.count('reason="shutdown"') == 3
        assert " reject client=" not in log
    finally:
        peer.stop()


def test_forced_stop_during_end_of_data(make_mx):
    peer = ScriptedMailbox(silent_dot=True)
    try:
        mx = make_mx(f"smtp:127.0.0.1:{peer.port}")
        c = Client(mx.port)
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: cut off\r\n\r\nbody\r\n.\r\n")
        assert peer.waiting.wait(10), "the message never reached the downstream"
        forced_stop(mx)
        # the client never got a 250: nothing acknowledged is lost
        try:
            code = c.reply()[0]
        except (OSError, EOFError, ConnectionError):
            code = None
        assert code != 250
        assert c.closed()
    finally:
        peer.stop()


def test_forced_stop_during_tarpit(make_mx, sink):
    """A reply held by the harvest tarpit (a timer on the worker's loop
    that will not fire once the loop has ended) is called off."""
    mx = make_mx(sink.target, extra="""
harvest = { tarpit_after = 1; tarpit_delay = "60s"; block_after = 1000; };""")
    c = Client(mx.port)
    c.ehlo()
    assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
    assert c.cmd("RCPT TO:<guess1@example.test>")[0] == 550
    c.send(b"RCPT TO:<guess2@example.test>\r\n")   # past tarpit_after: held
    c.sock.settimeout(0.5)
    try:
        c.reply()
        raise AssertionError("the tarpit did not hold the reply")
    except socket.timeout:
        pass
    t = time.monotonic()
    forced_stop(mx)
    assert time.monotonic() - t < 20
    c.sock.settimeout(5)
    assert c.closed()
