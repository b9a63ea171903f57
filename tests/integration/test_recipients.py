# Recipient checks: unknown users, extensions, catch-all, the per-session
# dictionary-attack limit and the recipients-per-message limit.
from conftest import Client


def test_unknown_and_extensions(make_mx, sink):
    mx = make_mx(sink.target, recipients=["alice@example.test", "@catchall.test"],
                 domains=["example.test", "catchall.test"])
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    assert c.cmd("RCPT TO:<nobody@example.test>") == \
        (550, "5.1.1 <nobody@example.test>: Recipient address rejected: user unknown")
    assert c.cmd("RCPT TO:<alice+lists@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<ALICE@EXAMPLE.TEST>")[0] == 250
    assert c.cmd("RCPT TO:<whoever@catchall.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: x\r\n\r\ny\r\n.\r\n")
    assert c.reply()[0] == 250
    [m] = sink.wait_messages(1)
    # the address goes downstream as the client wrote it (domain lowercased)
    assert m["env"]["X-Rcpt-Args"] == ["<alice+lists@example.test>", "<ALICE@example.test>",
                                       "<whoever@catchall.test>"]


def test_harvest_limit_closes_session(make_mx, sink):
    mx = make_mx(sink.target, extra="limits = { unknown_recipients = 5; };")
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    for i in range(4):
        assert c.cmd(f"RCPT TO:<guess{i}@example.test>")[0] == 550
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250   # valid ones do not count
    assert c.cmd("RCPT TO:<guess4@example.test>")[0] == 550
    assert c.reply() == (421, "4.7.1 Too many unknown recipients, closing connection")
    assert c.closed()
    mx.wait_log(r'disconnect client=127\.0\.0\.1 reason="too many unknown recipients"')
    assert sink.messages() == []


def test_harvest_pipelined(make_mx, sink):
    """A pipelined burst of guesses is cut off at the limit."""
    mx = make_mx(sink.target, extra="limits = { unknown_recipients = 3; };")
    c = Client(mx.port)
    c.ehlo()
    c.send("MAIL FROM:<a@remote.test>\r\n" +
           "".join(f"RCPT TO:<g{i}@example.test>\r\n" for i in range(100)))
    assert c.reply()[0] == 250
    assert [c.reply()[0] for _ in range(4)] == [550, 550, 550, 421]
    assert c.closed()


def test_too_many_recipients(make_mx, sink):
    mx = make_mx(sink.target, recipients=["@example.test"], extra="limits = { recipients = 3; };")
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    for i in range(3):
        assert c.cmd(f"RCPT TO:<u{i}@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<u3@example.test>") == (452, "4.5.3 Too many recipients")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: x\r\n\r\ny\r\n.\r\n")
    assert c.reply()[0] == 250
    [m] = sink.wait_messages(1)
    assert len(m["env"]["X-Rcpt-Args"]) == 3


def test_duplicate_recipient_once(mx, sink):
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: x\r\n\r\ny\r\n.\r\n")
    assert c.reply()[0] == 250
    [m] = sink.wait_messages(1)
    assert m["env"]["X-Rcpt-Args"] == ["<alice@example.test>"]
