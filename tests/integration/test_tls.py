# STARTTLS with a certificate made at test time; plaintext injection after
# STARTTLS (CVE-2011-0411) is discarded; several commands in one TLS record.
import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import Client


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
