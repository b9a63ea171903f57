# STARTTLS with a certificate made at test time; plaintext injection after
# STARTTLS (CVE-2011-0411) is discarded; several commands in one TLS record.
import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import Client, send_message


@pytest.fixture
def tls_mx(make_mx, sink, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=mx1.example.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return make_mx(sink.target, extra=f'tls = {{ cert = "{cert}"; key = "{key}"; }};')


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_starttls_delivery(tls_mx, sink):
    s = smtplib.SMTP("127.0.0.1", tls_mx.port)
    s.ehlo("tls.client")
    assert s.has_extn("starttls")
    s.starttls(context=tls_context())
    s.ehlo("tls.client")
    assert not s.has_extn("starttls")
    assert s.sendmail("a@remote.test", ["alice@example.test"], "Subject: tls\r\n\r\nx\r\n") == {}
    s.quit()
    [m] = sink.wait_messages(1)
    assert b"with ESMTPS id" in m["body"]
    assert b"(using TLSv1.3 with cipher" in m["body"]
    assert "tls client=127.0.0.1 version=TLSv1.3" in tls_mx.log()


def test_starttls_plaintext_injection_discarded(tls_mx, sink):
    c = Client(tls_mx.port)
    c.ehlo()
    # STARTTLS and an injected command in one plaintext packet
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
    assert c.reply() == (220, "2.0.0 Ready to start TLS")
    tls = tls_context().wrap_socket(c.sock, server_hostname="mx1.example.test")
    c.sock, c.buf = tls, b""
    # the session starts over: MAIL without a new EHLO is out of sequence,
    # proving the injected MAIL was not carried over into the TLS session
    assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 503
    assert c.cmd("EHLO again.test")[0] == 250
    assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
    assert "starttls-injection client=127.0.0.1 discarded=" in tls_mx.log()


def test_commands_in_one_tls_record(tls_mx, sink):
    c = Client(tls_mx.port)
    c.ehlo()
    assert c.cmd("STARTTLS")[0] == 220
    tls = tls_context().wrap_socket(c.sock, server_hostname="mx1.example.test")
    c.sock, c.buf = tls, b""
    # one write is one TLS record: the server must see all of it without
    # waiting for more bytes from the socket
    c.send(b"EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.reply()[0] == 354
    c.send(b"Subject: rec\r\n\r\nx\r\n.\r\nNOOP\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250


def test_starttls_errors(tls_mx, make_mx, sink):
    c = Client(tls_mx.port)
    c.ehlo()
    assert c.cmd("STARTTLS now")[0] == 501
    # a failed handshake only ends that session
    assert c.cmd("STARTTLS")[0] == 220
    c.send(b"this is not a TLS client hello\r\n" * 10)
    assert c.closed()
    tls_mx.wait_log("tls-fail client=127.0.0.1")
    # without tls configured, STARTTLS is neither offered nor accepted
    plain = make_mx(sink.target)
    c = Client(plain.port)
    assert "STARTTLS" not in c.ehlo()[1]
    assert c.cmd("STARTTLS")[0] == 502


def test_bad_certificate_is_config_error(make_mx, sink, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    mx = make_mx(sink.target, start=False, extra=f'tls = {{ cert = "{bad}"; key = "{bad}"; }};')
    r = subprocess.run([__import__("conftest").MXGUARD, "check-config", str(mx.conf)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "cannot load certificate" in r.stderr


def make_tls_mx(make_mx, sink, tmp_path, extra="", timeouts=None):
    cert, key = tmp_path / "cert2.pem", tmp_path / "key2.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=mx1.example.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return make_mx(sink.target, timeouts=timeouts,
                   extra=f'tls = {{ cert = "{cert}"; key = "{key}"; }};' + extra)


def test_stalled_handshake_frees_its_slot(make_mx, sink, tmp_path):
    """A client that says STARTTLS and then nothing (or trickles its
    ClientHello) is cut off at the command timeout, and its connection slot
    is freed: the 421 could not go out mid-handshake, the session waited
    for it for good, and the address stayed locked out until a restart;
    a stop then never ended (found in review, 2026-11-29)."""
    import time
    mx = make_tls_mx(make_mx, sink, tmp_path, extra="limits = { connections_per_ip = 2; };",
                     timeouts={"command": '"2s"'})
    held = []
    for trickle in (False, True):
        c = Client(mx.port)
        c.ehlo()
        assert c.cmd("STARTTLS")[0] == 220
        held.append(c)
    c = Client(mx.port, greeting=False)
    assert c.reply()[0] == 421  # both slots taken
    start = time.monotonic()
    try:  # the second trickles a byte a second, until it is cut off
        while time.monotonic() - start < 4:
            held[1].sock.sendall(b"\x16")
            time.sleep(1)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert time.monotonic() - start > 1.5
    time.sleep(1)
    ok = Client(mx.port)
    assert ok.greeting[0] == 220, "a stalled handshake still holds its slot"
    assert "reason=\"handshake timeout\"" in mx.log()
    ok.cmd("QUIT")
    mx.proc.send_signal(__import__("signal").SIGTERM)
    assert mx.proc.wait(timeout=20) == 0


def test_tls_client_that_does_not_read(make_mx, sink, tmp_path):
    """Under TLS, replies to a client that pipelines without reading are
    bounded as they are in plain text: the filter passed them on at once,
    and the check saw an empty buffer (692 MB in 30 s in review)."""
    import ssl as _ssl
    mx = make_tls_mx(make_mx, sink, tmp_path)
    raw = socket.create_connection(("127.0.0.1", mx.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    f = raw.makefile("rb")
    f.readline()
    raw.sendall(b"EHLO c.test\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    raw.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220")
    s = tls_context().wrap_socket(raw, server_hostname="mx1.example.test")
    s.settimeout(0.5)
    sent = 0
    chunk = b"EHLO c.test\r\n" * 1000
    try:
        while sent < 60_000_000:
            s.sendall(chunk)
            sent += len(chunk)
    except (socket.timeout, _ssl.SSLError, BlockingIOError):
        pass
    # the server stopped reading long before 60 MB, as in plain text (it
    # read all of it before, and its memory grew with the replies)
    assert sent < 20_000_000, sent
    s.close()
    assert send_message(mx.port)[0] == 250  # and it serves others
