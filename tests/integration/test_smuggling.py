# SMTP smuggling (CVE-2023-51764 and its kind): only CRLF.CRLF ends DATA. A
# message with a bare LF or CR is refused whole; what hides behind the fake
# end is never run as commands.
import pytest

from conftest import Client

ATTACKS = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r.\r",
]


@pytest.mark.parametrize("fake_end", ATTACKS)
def test_smuggled_message_refused(mx, sink, fake_end):
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    c.cmd("RCPT TO:<alice@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: outer\r\n\r\nhello" + fake_end +
           b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
           b"Subject: smuggled\r\n\r\nevil\r\n.\r\n")
    code, text = c.reply()
    assert code == 554 and text.startswith("5.6.0"), text
    # nothing else comes back: the smuggled commands were message text
    assert c.cmd("NOOP")[0] == 250
    c.cmd("QUIT")
    assert sink.messages() == []
    assert "result=rejected" in mx.log()


def test_bare_lf_in_text(mx, sink):
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    c.cmd("RCPT TO:<alice@example.test>")
    c.cmd("DATA")
    c.send(b"Subject: x\r\n\r\nline one\nline two\r\n.\r\n")
    code, text = c.reply()
    assert code == 554
    assert "reason=bare_lf" in mx.log()
    assert sink.messages() == []


def test_dot_stuffing_round_trip(mx, sink):
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    c.cmd("RCPT TO:<alice@example.test>")
    c.cmd("DATA")
    c.send(b"Subject: dots\r\n\r\n..\r\n...\r\n.a\r\n.\r\n")
    assert c.reply()[0] == 250
    [m] = sink.wait_messages(1)
    # client stuffing undone, ours undone by the sink: the original lines
    assert m["message"].startswith(b"Subject: dots\n\n.\n..\na\n")
