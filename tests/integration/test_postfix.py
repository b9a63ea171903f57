# A real Postfix instance as the mailbox server behind mxguard: mail arrives
# in the maildir; Postfix's own refusals come back to the client.
import pytest

from conftest import send_message
from peers import Postfix


@pytest.fixture
def postfix():
    pf = Postfix(mode="mailbox", mailboxes=["alice@example.test", "bob@example.test"]).start()
    yield pf
    pf.stop()


def test_delivery_into_postfix(make_mx, postfix):
    mx = make_mx(f"smtp:127.0.0.1:{postfix.port}")
    body = (b"From: <sender@remote.test>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
            b"Subject: to postfix\r\nMessage-ID: <pf1@remote.test>\r\n\r\n..one\r\ntwo\r\n")
    code, text = send_message(mx.port, rcpts=["alice@example.test", "bob@example.test"], body=body)
    assert code == 250, text
    assert "mailbox server: 250" in text
    [a] = postfix.wait_delivered("alice@example.test", 1)
    [b] = postfix.wait_delivered("bob@example.test", 1)
    for m in (a, b):
        # Postfix adds its own trace above ours; ours names mxguard and the client
        assert b"by mx1.example.test (mxguard) with ESMTP id" in m
        assert m.endswith(b"From: <sender@remote.test>\nDate: Sat, 28 Nov 2026 10:00:00 +0000\n"
                          b"Subject: to postfix\nMessage-ID: <pf1@remote.test>\n\n.one\ntwo\n")


def test_postfix_refusal_passed_on(make_mx, postfix):
    """mxguard's list says carol exists, Postfix's does not: the client gets
    Postfix's 550, and nothing is delivered to anyone."""
    mx = make_mx(f"smtp:127.0.0.1:{postfix.port}",
                 recipients=["alice@example.test", "carol@example.test"])
    code, text = send_message(mx.port, rcpts=["alice@example.test", "carol@example.test"])
    assert code == 550 and text.startswith("5.1.1"), text
    assert "carol@example.test" in text
    assert postfix.delivered("alice@example.test") == []
    # and a message for alice alone goes through on the same pooled connection
    assert send_message(mx.port, rcpts=["alice@example.test"])[0] == 250
    postfix.wait_delivered("alice@example.test", 1)


def test_starttls_to_downstream(make_mx, tmp_path):
    """The downstream offers STARTTLS: mxguard uses it (downstream_tls = may)."""
    import subprocess
    cert, key = tmp_path / "pf.pem", tmp_path / "pf.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=postfix.example.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    import os
    os.chmod(tmp_path, 0o755)
    os.chmod(tmp_path.parent, 0o755)
    os.chmod(key, 0o644)
    pf = Postfix(mode="mailbox", mailboxes=["alice@example.test"],
                 extra_main=f"smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n"
                            "smtpd_tls_security_level = may\nsmtpd_tls_received_header = yes\n").start()
    try:
        mx = make_mx(f"smtp:127.0.0.1:{pf.port}")
        assert send_message(mx.port)[0] == 250
        [m] = pf.wait_delivered("alice@example.test", 1)
        assert b"(using TLSv1.3 with cipher" in m.split(b"by mx1.example.test")[0]
    finally:
        pf.stop()


def test_tls_required_but_not_offered(make_mx, sink):
    mx = make_mx(sink.target, extra='downstream_tls = "encrypt";')
    code, text = send_message(mx.port)
    assert code == 451
    assert "does not offer STARTTLS" in mx.log()

