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
