# Signals: SIGHUP reloads (and refuses a bad file, keeping the old one);
# SIGTERM lets transactions in flight finish, then exits.
import signal
import time

from conftest import Client, send_message


def test_reload_recipients_and_config(mx, sink):
    c = Client(mx.port)   # a session open across the reload
    c.ehlo()
    assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
    assert c.cmd("RCPT TO:<carol@example.test>")[0] == 550
    assert c.cmd("RSET")[0] == 250
    mx.write_recipients(["alice@example.test", "carol@example.test"])
    mx.signal(signal.SIGHUP)
    mx.wait_log(r"reload: done .*recipients=\"file .* \(2 entries\)\"")
    assert send_message(mx.port, rcpts=["carol@example.test"])[0] == 250
    # the session opened before the reload still works
    assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    c.cmd("QUIT")


def test_bad_reload_keeps_running_config(mx, sink):
    good = mx.conf.read_text()
    mx.conf.write_text(good + "\nlimits = { recipients = -1; };\nbogus_key = 1;\n")
    mx.signal(signal.SIGHUP)
    mx.wait_log("reload: refused; the running configuration stays in force")
    log = mx.log()
    assert "'limits.recipients' is -1" in log
    assert "unknown key 'bogus_key'" in log
    assert send_message(mx.port)[0] == 250
    # a broken recipients file is refused too
    mx.conf.write_text(good)
    mx.rcpt_file.write_text("alice@example.test\nthis is not an address\n")
    mx.signal(signal.SIGHUP)
    mx.wait_log(r"recipients:2: one address per line")
    assert log.count("refused; the running") < mx.log().count("refused; the running")
    assert send_message(mx.port, rcpts=["bob@example.test"])[0] == 250
    assert mx.proc.poll() is None


def test_sigterm_finishes_transaction(mx, sink):
    idle = Client(mx.port)
    idle.ehlo()
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    c.cmd("RCPT TO:<alice@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
    mx.signal(signal.SIGTERM)
    mx.wait_log("shutdown: SIGTERM received")
    # the idle session is told at once
    assert idle.reply() == (421, "4.3.2 Service shutting down, closing connection")
    assert idle.closed()
    # new connections are no longer accepted
    time.sleep(0.3)
    try:
        Client(mx.port, timeout=2)
        raise AssertionError("accepted a connection during shutdown")
    except (ConnectionRefusedError, ConnectionError, OSError):
        pass
    # the transaction in flight completes
    c.send(b"second half\r\n.\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 421   # and then the session is closed
    assert c.closed()
    assert mx.proc.wait(10) == 0
    [m] = sink.wait_messages(1)
    assert m["message"].startswith(b"Subject: in flight\n\nfirst half\nsecond half\n")
    log = mx.log()
    assert "mxguard stopped" in log
    # the stop's 421 is no rejection of the client's last command: the
    # disconnect lines tell it, and no reject line names EHLO or DATA
    assert log.count('disconnect client=127.0.0.1 reason="shutdown"') == 2
    assert " reject client=" not in log


def test_reload_signal_while_starting(make_mx, sink):
    """SIGHUP (and SIGUSR1) while the gateway is still starting are ignored,
    not fatal: their handlers came last, and a reload sent during a long
    start (a large recipients file) killed it (found in review, 2026-11-29)."""
    import signal as sig
    import time
    mx = make_mx(sink.target, start=False,
                 recipients=[f"user{i}@example.test" for i in range(400_000)])
    mx.start(wait=False)
    time.sleep(0.05)
    assert mx.proc.poll() is None
    mx.proc.send_signal(sig.SIGHUP)
    mx.proc.send_signal(sig.SIGUSR1)
    mx.wait_log("started pid=", timeout=60)
    assert mx.proc.poll() is None
    assert "started pid=" in mx.log()
