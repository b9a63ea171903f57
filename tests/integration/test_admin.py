# The admin endpoint: Prometheus counters that move with real traffic, and
# a health check that turns 503 while draining.
import signal
import urllib.request

from conftest import free_port, send_message


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name, kind=int):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return kind(line.split()[1])
    raise KeyError(name)


def test_metrics_and_health(make_mx, sink):
    aport = free_port()
    mx = make_mx(sink.target, extra=f'admin = {{ listen = "127.0.0.1:{aport}"; }};')
    code, text = get(aport, "/metrics")
    assert code == 200
    assert "# TYPE mxguard_msg_delivered_total counter" in text
    # an empty store: no model to score with yet (alert on it)
    assert metric(text, "mxguard_classifier_ready") == 0
    assert "mxguard_classifier_examples" not in text
    before = metric(text, "mxguard_msg_delivered_total")
    assert send_message(mx.port)[0] == 250
    code, text = get(aport, "/metrics")
    assert metric(text, "mxguard_msg_delivered_total") == before + 1
    assert metric(text, "mxguard_smtp_rcpt_accepted_total") >= 1
    assert get(aport, "/health") == (200, "ok\n")
    assert get(aport, "/nope")[0] == 404


def test_expired_entries_are_swept(make_mx, sink):
    """Entries that expire (here the harvest defence's counters, whose keys
    are the clients) are removed from the store once expired, and counted:
    they used to stay for good, and a store under a long dictionary attack
    filled (found in review, 2026-11-29)."""
    import time
    from conftest import Client, free_port
    aport = free_port()
    mx = make_mx(sink.target, extra=f'admin = {{ listen = "127.0.0.1:{aport}"; }};'
                                    'harvest = { window = "1s"; tarpit_after = 1000; block_after = 1000; };')
    c = Client(mx.port)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.test>")
    for i in range(5):
        assert c.cmd(f"RCPT TO:<nobody{i}@example.test>")[0] == 550
    c.cmd("QUIT")
    deadline = time.time() + 15
    while time.time() < deadline:
        if metric(get(aport, "/metrics")[1], "mxguard_store_expired_total") > 0:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("no expired entry was removed")


def test_admin_endpoint_limits(make_mx, sink):
    """A scrape is a small GET: a huge header or a body is refused, and
    other methods too (the endpoint buffered anything, on the main loop;
    found in review, 2026-11-29)."""
    import socket
    from conftest import free_port
    aport = free_port()
    make_mx(sink.target, extra=f'admin = {{ listen = "127.0.0.1:{aport}"; }};')

    def raw(data):
        s = socket.create_connection(("127.0.0.1", aport), timeout=10)
        try:
            s.sendall(data)
        except OSError:
            pass
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except OSError:
            pass
        s.close()
        return out

    assert raw(b"GET /health HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200")
    big = raw(b"GET /metrics HTTP/1.0\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n")
    assert not big.startswith(b"HTTP/1.0 200"), big[:100]
    body = raw(b"GET /metrics HTTP/1.0\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 100_000)
    assert not body.startswith(b"HTTP/1.0 200"), body[:100]
    assert raw(b"POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n").startswith(b"HTTP/1.1 501")
    assert get(aport, "/health") == (200, "ok\n")
