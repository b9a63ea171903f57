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


def send_data(mx, data):
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    c.cmd("RCPT TO:<alice@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send(data + b".\r\n")
    reply = c.reply()
    c.cmd("QUIT")
    return reply


def test_forged_verdict_without_empty_line(make_mx, sink):
    """A sender who leaves out the empty line (a message that is all
    header block) or writes a header block longer than the prefix the
    filter reads cannot keep an X-Spam-* header past our rewrite; past
    1 MiB of header block the message is refused (found by
    tests/fuzz/fuzz_gateway)."""
    mx = make_mx(sink.target, extra='content = { scan_limit = "4K"; subject_prefix = "[SPAM] "; };')
    # all header block: no empty line, no body
    assert send_data(mx, b"Subject: one\r\nX-Spam-Status: No, forged\r\n")[0] == 250
    # the forged header 6 KB down, past the 4 KB the filter reads
    filler = b"".join(b"X-Filler-%04d: %s\r\n" % (i, b"f" * 40) for i in range(120))
    assert send_data(mx, b"Subject: two\r\n" + filler + b"X-Spam-Flag: YES forged\r\n"
                     b"\r\nbody two\r\n")[0] == 250
    one, two = sink.wait_messages(2)
    for m in (one, two):
        assert b"forged" not in m["body"], m["body"][:400]
        assert m["verdict"].count(b"X-Spam-Status: ") == 1
    assert one["message"].startswith(b"Subject: one\n")
    assert two["message"].startswith(b"Subject: two\nX-Filler-0000: ")
    assert two["message"].rstrip(b"\n").endswith(b"X-Filler-0119: " + b"f" * 40 + b"\n\nbody two")
    # a header block of more than 1 MiB: refused, and never relayed
    big = b"".join(b"X-Filler-%06d: %s\r\n" % (i, b"f" * 60) for i in range(14000))
    code, text = send_data(mx, b"Subject: three\r\n" + big + b"\r\nbody\r\n")
    assert code == 552 and text.startswith("5.6.0"), (code, text)
    mx.wait_log(r"reason=header_too_long")
    assert len(sink.messages()) == 2
