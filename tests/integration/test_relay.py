# Never an open relay: foreign domains and every routing trick are refused,
# and nothing reaches the downstream.
import pytest

from conftest import Client

TRICKS = [
    # (RCPT argument, expected code, enhanced code)
    ("<victim@other.test>", 554, "5.7.1"),
    ("<victim@EXAMPLE.test.evil.test>", 554, "5.7.1"),
    ("<victim@sub.example.test>", 554, "5.7.1"),           # subdomains are off by default
    ("<victim@[127.0.0.1]>", 554, "5.7.1"),                 # address literal
    ("<alice%victim.test@example.test>", 554, "5.7.1"),     # percent hack
    ("<victim.test!alice@example.test>", 554, "5.7.1"),     # bang path
    ("<@example.test:victim@other.test>", 554, "5.7.1"),    # source route
    ("<@a.test,@example.test:victim@other.test>", 554, "5.7.1"),
    ("<\"victim@other.test\"@example.test>", 554, "5.7.1"),  # quoted hidden @
    ("<\"victim%other.test\"@example.test>", 554, "5.7.1"),
    ("<victim@other.test@example.test>", 501, "5.1.3"),
    ("<victim@other.test>@example.test", 501, "5.1.3"),
    ("<>", 501, "5.1.3"),
    ("<@>", 554, "5.7.1"),
    ("<alice@example.test", 501, "5.1.3"),
    ("<alice\x01@example.test>", 501, "5.1.3"),
    ("<ali ce@example.test>", 501, "5.1.3"),
    ("<alice@exa\tmple.test>", 501, "5.1.3"),
]


@pytest.mark.parametrize("arg,code,enh", TRICKS)
def test_relay_tricks_refused(mx, sink, arg, code, enh):
    c = Client(mx.port)
    c.ehlo()
    assert c.cmd("MAIL FROM:<spammer@remote.test>")[0] == 250
    got, text = c.cmd("RCPT TO:" + arg)
    assert (got, text[:5]) == (code, enh), text
    # the transaction has no recipient: DATA is refused
    assert c.cmd("DATA")[0] == 554
    c.cmd("QUIT")
    assert sink.messages() == []


def test_relay_mixed_with_valid(mx, sink):
    """A valid recipient next to a relay attempt: only the valid one is used."""
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<spammer@remote.test>")
    assert c.cmd("RCPT TO:<victim@other.test>")[0] == 554
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice%victim@example.test>")[0] == 554
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: x\r\n\r\ny\r\n.\r\n")
    assert c.reply()[0] == 250
    [m] = sink.wait_messages(1)
    assert m["env"]["X-Rcpt-Args"] == ["<alice@example.test>"]
    assert "reject client=127.0.0.1 cmd=RCPT reply=\"554 5.7.1 <victim@other.test>: Relay access denied\"" in mx.log()


def test_sender_tricks(mx):
    c = Client(mx.port)
    c.ehlo()
    for arg, code in [("<@a.test:x@b.test>", 501), ("<a@b.test", 501), ("<a\x7f@b.test>", 501),
                      ("x@y.test z", 555), ("", 501)]:
        got, text = c.cmd("MAIL FROM:" + arg)
        assert got == code, (arg, text)
    assert c.cmd("MAIL FROM:<bounce%x@remote.test>")[0] == 250  # harmless in a sender


def test_subdomains_when_configured(make_mx, sink):
    mx = make_mx(sink.target, recipients=["@sub.example.test", "alice@example.test"],
                 extra="subdomains = true;")
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    assert c.cmd("RCPT TO:<anyone@sub.example.test>")[0] == 250
    assert c.cmd("RCPT TO:<anyone@other.sub.example.test>")[0] == 550   # ours, but unknown
    assert c.cmd("RCPT TO:<anyone@notexample.test>")[0] == 554
