# The downstream's answer is the client's answer: 250 only after the
# downstream said 250; unreachable or 4xx gives 451 4.4.x, 5xx is passed on.
# Several downstreams follow MX rules.
import time

from conftest import Client, free_port, send_message


def test_downstream_down(make_mx):
    mx = make_mx(f"smtp:127.0.0.1:{free_port()}")
    code, text = send_message(mx.port)
    assert (code, text) == (451, "4.4.1 Mailbox server unavailable, try again later")
    assert "result=tempfail" in mx.log()
    assert "downstream=none attempts=1" in mx.log()


def test_downstream_comes_back(make_mx, make_sink):
    port = free_port()
    mx = make_mx(f"smtp:127.0.0.1:{port}", timeouts={"downstream_retry": '"1s"'})
    assert send_message(mx.port)[0] == 451
    import conftest
    s = conftest.SmtpSink.__new__(conftest.SmtpSink)
    sink = make_sink()
    mx.write_config(sink.target)
    mx.signal(__import__("signal").SIGHUP)
    mx.wait_log("reload: done")
    assert send_message(mx.port)[0] == 250
    assert len(sink.wait_messages(1)) == 1


def test_downstream_hard_reject(make_mx, make_sink):
    sink = make_sink(["-f", ".", "-B", "554 5.7.1 Policy rejection by mailbox server"])
    mx = make_mx(sink.target)
    code, text = send_message(mx.port)
    assert code == 554
    assert text == "5.7.1 Mailbox server rejected the message: Policy rejection by mailbox server"


def test_downstream_soft_reject(make_mx, make_sink):
    sink = make_sink(["-r", ".", "-b", "452 4.2.2 Mailbox full"])
    mx = make_mx(sink.target)
    code, text = send_message(mx.port)
    assert code == 451 and text.startswith("4.4.0 ")
    assert "452 4.2.2 Mailbox full" in text


def test_downstream_rcpt_reject_all_or_nothing(make_mx, make_sink):
    """The downstream refuses a recipient mxguard accepted: nothing is
    delivered, and the refusal goes back to the client for the message."""
    sink = make_sink(["-f", "rcpt", "-B", "550 5.1.1 No such user here"])
    mx = make_mx(sink.target)
    code, text = send_message(mx.port, rcpts=["alice@example.test"])
    assert code == 550 and text.startswith("5.1.1 ")
    assert "<alice@example.test>" in text


def test_downstream_disconnect_after_data(make_mx, make_sink):
    """The downstream hangs up after the message went out: the client must
    not get 250 (it retries; a duplicate is possible, a loss is not)."""
    sink = make_sink(["-q", "."])
    mx = make_mx(sink.target)
    code, text = send_message(mx.port)
    assert code == 451


def test_failover_by_priority(make_mx, make_sink):
    good = make_sink()
    dead = f"smtp:127.0.0.1:{free_port()}"
    mx = make_mx([f'{{ target = "{dead}"; priority = 10; }}',
                  f'{{ target = "{good.target}"; priority = 20; }}'])
    for _ in range(3):
        assert send_message(mx.port)[0] == 250
    assert len(good.wait_messages(3)) == 3
    # the dead target was tried once, then skipped for downstream_retry
    assert mx.log().count("unusable at connect") == 1


def test_equal_priority_spreads(make_mx, make_sink):
    a, b = make_sink(), make_sink()
    mx = make_mx([f'{{ target = "{a.target}"; priority = 5; }}',
                  f'{{ target = "{b.target}"; priority = 5; }}'],
                 timeouts={"downstream_idle": '0'})
    for _ in range(30):
        assert send_message(mx.port)[0] == 250
    time.sleep(0.2)
    na, nb = len(a.messages()), len(b.messages())
    assert na + nb == 30
    assert na >= 3 and nb >= 3, (na, nb)


def test_lmtp_downstream(make_mx, make_sink):
    sink = make_sink(lmtp=True)
    mx = make_mx(f"lmtp:127.0.0.1:{sink.port}")
    code, text = send_message(mx.port, rcpts=["alice@example.test", "bob@example.test"])
    assert code == 250, text
    [m] = sink.wait_messages(1)
    assert m["env"]["X-Client-Proto"] == ["LMTP"]
    assert m["env"]["X-Rcpt-Args"] == ["<alice@example.test>", "<bob@example.test>"]


def downstream_counts(aport):
    from test_admin import get, metric
    text = get(aport, "/metrics")[1]
    return metric(text, "mxguard_downstream_connect_total"), metric(text, "mxguard_downstream_reuse_total")


def test_connection_reuse(make_mx, make_sink):
    """Downstream connections are reused, after a delivered message and after
    a refused one: the RSET after a refusal used to close the connection
    once its reply came in (found in review, 2026-11-29)."""
    from conftest import free_port
    for args, want in (([], 250), (["-f", "rcpt", "-B", "550 5.1.1 No such user"], 550)):
        sink = make_sink(args)
        aport = free_port()
        mx = make_mx(sink.target, extra=f'admin = {{ listen = "127.0.0.1:{aport}"; }};')
        for _ in range(6):
            assert send_message(mx.port)[0] == want
            time.sleep(0.05)  # the RSET's reply is in before the next
        connects, reuses = downstream_counts(aport)
        # six messages on two workers: at most one connection each
        assert connects <= 2 and connects + reuses == 6, (args, connects, reuses)
