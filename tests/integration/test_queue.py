# Store-and-forward delivery (delivery = "queue"): nothing acknowledged is
# lost; retries follow the schedule; permanent failures bounce once to the
# sender (never to <>, never for spam); a full disk gives 452; the queue
# survives restarts and SIGKILL; `mxguard queue` controls it.
import os
import random
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import MXGUARD, Client, LoopbackServer, free_port, send_message, wait_for


def queue_extra(tmp, bounce_port=None, retry='"1s", "2s"', more=""):
    b = f'bounce = "smtp:127.0.0.1:{bounce_port}";' if bounce_port else ""
    return (f'delivery = "queue";\n'
            f'queue = {{ path = "{tmp}/queue"; retry = [{retry}]; min_free = "1M"; {b} {more} }};')


def qctl(mx, *args):
    r = subprocess.run([MXGUARD, "queue", "-c", str(mx.conf), *args], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def test_queued_delivery(make_mx, sink, tmp_path):
    mx = make_mx(sink.target, extra=queue_extra(tmp_path))
    code, text = send_message(mx.port, rcpts=["alice@example.test", "bob@example.test"],
                              body=b"Subject: queued\r\n\r\n..dot\r\n")
    assert code == 250 and re.match(r"2\.0\.0 Ok: queued as [0-9a-f]{16}$", text), text
    qid = text.split()[-1]
    [m] = sink.wait_messages(1)
    assert m["env"]["X-Rcpt-Args"] == ["<alice@example.test>", "<bob@example.test>"]
    assert m["message"].startswith(b"Subject: queued\n\n.dot\n")
    mx.wait_log(rf"queue id={qid} result=delivered delivered=2 failed=0 attempts=1")
    assert f"message id={qid}" in mx.log() and "result=queued" in mx.log()
    # the spool is empty again
    wait_for(lambda: qctl(mx, "list") == (0, ""), what="empty queue")


def test_downstream_outage_and_schedule(make_mx, make_sink, tmp_path):
    port = free_port()
    mx = make_mx(f"smtp:127.0.0.1:{port}", extra=queue_extra(tmp_path, retry='"1s", "2s", "3s"'))
    ids = []
    for i in range(5):
        code, text = send_message(mx.port, body=f"Subject: m{i}\r\n\r\nx\r\n".encode())
        assert code == 250
        ids.append(text.split()[-1])
    code, out = qctl(mx, "list")
    assert code == 0 and all(i in out for i in ids)
    # the retry schedule: 1 s after the first attempt, then 2 s, then 3 s
    mx.wait_log(rf"queue id={ids[0]} result=deferred .* attempts=3 next=\+3s", timeout=15)
    nexts = re.findall(rf"queue id={ids[0]} result=deferred .*attempts=(\d) next=\+(\d+)s", mx.log())
    assert nexts[:3] == [("1", "1"), ("2", "2"), ("3", "3")]
    # the downstream comes back on the port the queue waits for
    import conftest
    late = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{port}", "100"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        conftest.wait_port(port)
        assert qctl(mx, "flush")[0] == 0
        wait_for(lambda: qctl(mx, "list") == (0, ""), timeout=20, what="queue drained")
        for i in ids:
            assert re.search(rf"queue id={i} result=delivered", mx.log())
    finally:
        late.terminate()
        late.wait()


def test_permanent_failure_one_dsn(make_mx, make_sink, tmp_path):
    down = make_sink(["-f", "rcpt", "-B", "550 5.1.1 No such user here"])
    bounces = make_sink()
    mx = make_mx(down.target, extra=queue_extra(tmp_path, bounces.port))
    code, text = send_message(mx.port, sender="writer@remote.test",
                              body=b"Subject: will bounce\r\nMessage-ID: <b1@remote.test>\r\n\r\nx\r\n")
    assert code == 250
    qid = text.split()[-1]
    [dsn] = bounces.wait_messages(1)
    assert dsn["env"]["X-Mail-Args"][0].startswith("<>")
    assert dsn["env"]["X-Rcpt-Args"] == ["<writer@remote.test>"]
    body = dsn["message"]
    assert b"multipart/report; report-type=delivery-status" in body
    assert b"Final-Recipient: rfc822; alice@example.test" in body
    assert b"Status: 5.1.1" in body
    assert b"Diagnostic-Code: smtp; 550 5.1.1 No such user here" in body
    assert b"Message-ID: <b1@remote.test>" in body  # the original headers
    mx.wait_log(rf"queue id={qid} result=bounced delivered=0 failed=1")
    time.sleep(1.5)
    assert len(bounces.messages()) == 1  # one DSN, and the message left the queue
    assert qctl(mx, "list") == (0, "")


def test_dsn_headers_part_with_nul(make_mx, make_sink, tmp_path):
    """The DSN returns the original header block: a NUL byte in it made
    the body count as headers too (the search stopped at the NUL), and cut
    the DSN there. The NUL goes as a space in that text part."""
    down = make_sink(["-f", "rcpt", "-B", "550 5.1.1 No such user here"])
    bounces = make_sink()
    mx = make_mx(down.target, extra=queue_extra(tmp_path, bounces.port))
    code, _ = send_message(mx.port, sender="writer@remote.test",
                           body=b"Subject: a\x00b\r\nMessage-ID: <b2@remote.test>\r\n\r\n"
                                b"the body stays with the writer\r\n")
    assert code == 250
    [dsn] = bounces.wait_messages(1)
    body = dsn["message"]
    assert b"Subject: a b\nMessage-ID: <b2@remote.test>\n" in body
    assert b"the body stays with the writer" not in body
    assert body.rstrip().endswith(b"--")  # the closing boundary is there


def test_no_dsn_to_null_sender_or_for_spam(make_mx, make_sink, tmp_path):
    down = make_sink(["-f", "rcpt", "-B", "550 5.1.1 No such user here"])
    bounces = make_sink()
    rules = tmp_path / "rules"
    rules.write_text("body SPAMMY /buy cheap watches/i 6.0 test rule\n")
    mx = make_mx(down.target, extra=queue_extra(tmp_path, bounces.port) +
                 f'\ncontent = {{ rules = "{rules}"; }};')
    assert send_message(mx.port, sender="")[0] == 250
    assert send_message(mx.port, sender="writer@remote.test",
                        body=b"Subject: offer\r\n\r\nbuy cheap watches\r\n")[0] == 250
    mx.wait_log(r"no DSN for 1 failed recipient \(null sender\)")
    mx.wait_log(r"no DSN for 1 failed recipient \(spam or bounce\)")
    time.sleep(1)
    assert bounces.messages() == []


def test_partial_delivery_one_dsn(make_mx, make_sink, tmp_path):
    """One recipient refused, one accepted: the message goes to the one, the
    DSN names the other, and nothing is sent twice."""
    # smtp-sink cannot refuse one recipient and not the other: use LMTP with
    # Postfix-style per-recipient answers from a private Postfix instance
    from peers import Postfix
    pf = Postfix(mode="mailbox", mailboxes=["alice@example.test"]).start()
    try:
        bounces = make_sink()
        mx = make_mx(f"smtp:127.0.0.1:{pf.port}", extra=queue_extra(tmp_path, bounces.port),
                     recipients=["alice@example.test", "carol@example.test"])
        assert send_message(mx.port, sender="w@remote.test",
                            rcpts=["alice@example.test", "carol@example.test"])[0] == 250
        pf.wait_delivered("alice@example.test", 1)
        [dsn] = bounces.wait_messages(1)
        assert b"Final-Recipient: rfc822; carol@example.test" in dsn["message"]
        assert b"alice@example.test" not in dsn["message"].split(b"text/rfc822-headers")[0].split(
            b"message/delivery-status")[1]
    finally:
        pf.stop()


@pytest.fixture
def small_fs(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    yield d
    subprocess.run(["umount", "-l", str(d)])


def test_disk_full(make_mx, sink, small_fs, tmp_path):
    sink.stop()  # keep everything in the spool
    mx = make_mx(sink.target, extra=f'delivery = "queue";\n'
                 f'queue = {{ path = "{small_fs}/queue"; min_free = "256k"; }};')
    acked = []
    refused_at = None
    body = b"Subject: fill\r\n\r\n" + (b"x" * 998 + b"\r\n") * 100  # ~100 KB
    for i in range(40):
        c = Client(mx.port)
        c.ehlo()
        code, text = c.cmd("MAIL FROM:<a@remote.test> SIZE=100000")
        if code != 250:
            refused_at = ("MAIL", code, text)
            c.close()
            break
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        code, text = c.cmd("DATA")
        if code != 354:
            refused_at = ("DATA", code, text)
            break
        c.send(body + b"Message: %d\r\n.\r\n" % i)
        code, text = c.reply()
        if code == 250:
            acked.append(text.split()[-1])
        else:
            refused_at = ("end", code, text)
            break
        c.cmd("QUIT")
    assert refused_at is not None, "the spool never filled up"
    assert refused_at[1] == 452 and refused_at[2].startswith("4.3.1"), refused_at
    assert len(acked) >= 5
    # every acknowledged message is whole on disk, and nothing else is
    code, out = qctl(mx, "list")
    listed = [line.split()[0] for line in out.splitlines()]
    assert sorted(listed) == sorted(acked)
    assert not os.listdir(small_fs / "queue" / "tmp")


def test_restart_and_sigkill_keep_mail(make_mx, tmp_path):
    port = free_port()
    mx = make_mx(f"smtp:127.0.0.1:{port}", extra=queue_extra(tmp_path, retry='"1s"'))
    ids = [send_message(mx.port, body=f"Subject: k{i}\r\n\r\nx\r\n".encode())[1].split()[-1]
           for i in range(3)]
    mx.proc.send_signal(signal.SIGKILL)
    mx.proc.wait()
    mx.proc = None
    mx.start()
    mx.wait_log("queue: 3 messages read back")
    import conftest
    late = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{port}", "100"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        conftest.wait_port(port)
        wait_for(lambda: qctl(mx, "list") == (0, ""), timeout=20, what="queue drained")
        for i in ids:
            assert re.search(rf"queue id={i} result=delivered", mx.log())
    finally:
        late.terminate()
        late.wait()


def test_queue_cli(make_mx, tmp_path):
    port = free_port()
    mx = make_mx(f"smtp:127.0.0.1:{port}", extra=queue_extra(tmp_path, retry='"1h"'))
    qid = send_message(mx.port, rcpts=["alice@example.test", "bob@example.test"])[1].split()[-1]
    mx.wait_log(rf"queue id={qid} result=deferred")
    code, out = qctl(mx, "list")
    assert code == 0
    f = out.split()
    assert f[0] == qid and f[3] == "deferred" and f[4] == "1" and f[6] == "<sender@remote.test>"
    assert f[7:] == ["<alice@example.test>", "<bob@example.test>"]
    code, out = qctl(mx, "show", qid)
    assert "rcpt: <alice@example.test> pending" in out and "Connection refused" in out
    assert qctl(mx, "hold", qid) == (0, f"held {qid}\n")
    assert qctl(mx, "list")[1].split()[3] == "held"
    assert qctl(mx, "release", qid)[0] == 0
    assert qctl(mx, "show", "0000000000000000")[0] == 1
    assert qctl(mx, "delete", qid) == (0, f"deleted {qid}\n")
    assert qctl(mx, "list") == (0, "")
    assert (tmp_path / "queue" / "q").is_dir()  # where the files were: the check below can fail
    assert not list((tmp_path / "queue" / "q").glob(f"{qid}*"))
    # stats shows the queue figures
    r = subprocess.run([MXGUARD, "stats", "-c", str(mx.conf)], capture_output=True, text=True)
    assert "queue:" in r.stdout and "messages 0" in r.stdout
    # offline: with the gateway stopped, list/show work on the files
    qid2 = send_message(mx.port)[1].split()[-1]
    mx.stop()
    code, out = qctl(mx, "list")
    assert code == 0 and out.split()[0] == qid2
    assert qctl(mx, "flush")[0] == 1  # needs the gateway
    assert qctl(mx, "hold", qid2) == (0, f"held {qid2}\n")
    assert qctl(mx, "list")[1].split()[3] == "held"
    # a delete that fails says so (it used to print "deleted" whatever happened)
    msg = tmp_path / "queue" / "q" / f"{qid2}.msg"
    if subprocess.run(["chattr", "+i", str(msg)], capture_output=True).returncode == 0:
        try:
            code, out = qctl(mx, "delete", qid2)
            assert (code, out) == (1, f"could not delete {qid2}: Operation not permitted\n")
        finally:
            subprocess.run(["chattr", "-i", str(msg)], check=True)
        assert qctl(mx, "list")[1].split()[3] == "held"  # still held: its state stays with it
    assert qctl(mx, "delete", qid2) == (0, f"deleted {qid2}\n")
    assert qctl(mx, "list") == (0, "")


def test_crash_under_load(make_mx, sink, tmp_path):
    """SIGKILL at random moments under steady load: every message that got
    250 arrives at least once (the long version is bench/queue_crash.py)."""
    mx = make_mx(sink.target, extra=queue_extra(tmp_path, retry='"1s"'))
    acked = set()
    stop = threading.Event()
    lock = threading.Lock()

    def client(n):
        i = 0
        while not stop.is_set():
            tag = f"c{n}-{i}"
            i += 1
            try:
                code, text = send_message(mx.port, body=f"Subject: {tag}\r\nX-Tag: {tag}\r\n\r\nx\r\n".encode())
                if code == 250:
                    with lock:
                        acked.add(tag)
            except Exception:
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    rnd = random.Random(42)
    try:
        for _ in range(5):
            time.sleep(rnd.uniform(0.3, 1.0))
            mx.proc.send_signal(signal.SIGKILL)
            mx.proc.wait()
            mx.proc = None
            mx.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(acked) > 50
    wait_for(lambda: qctl(mx, "list") == (0, ""), timeout=30, what="queue drained")
    got = re.findall(rb"X-Tag: (c\d+-\d+)", sink.dump.read_bytes())
    counts = {}
    for g in got:
        counts[g.decode()] = counts.get(g.decode(), 0) + 1
    lost = acked - set(counts)
    assert not lost, f"acknowledged but never delivered: {sorted(lost)[:10]}"
    dups = sum(1 for v in counts.values() if v > 1)
    print(f"acked={len(acked)} delivered={len(counts)} duplicates={dups}")


@pytest.fixture
def dns():
    from peers import Dnsmasq
    d = Dnsmasq(["mx-host=remote.test,mx.remote.test,10", "host-record=mx.remote.test,127.0.0.1",
                 "mx-host=mailbox.test,box1.mailbox.test,20", "mx-host=mailbox.test,box2.mailbox.test,10",
                 "host-record=box1.mailbox.test,127.0.0.1", "host-record=box2.mailbox.test,127.0.0.2",
                 "mx-host=nomail.test,.,0"])
    yield d
    d.stop()


def test_bounce_to_sender_mx(make_mx, make_sink, dns, tmp_path):
    """Without queue.bounce, the DSN goes to the MX hosts of the sender's
    domain, found through the configured resolver."""
    down = make_sink(["-f", "rcpt", "-B", "550 5.1.1 No such user here"])
    bounces = make_sink()
    mx = make_mx(down.target, extra=queue_extra(tmp_path, more=f"mx_port = {bounces.port};") +
                 f'\ndns = {{ resolver = "{dns.resolver}"; }};')
    assert send_message(mx.port, sender="writer@remote.test")[0] == 250
    [d] = bounces.wait_messages(1)
    assert d["env"]["X-Rcpt-Args"] == ["<writer@remote.test>"]
    assert re.search(r"queue id=\w+ result=delivered .*mx:remote\.test\(mx\.remote\.test\[127\.0\.0\.1\]",
                     mx.log())
    # a sender domain that takes no mail (null MX): the DSN itself fails for
    # good and, being a bounce, is not bounced again
    assert send_message(mx.port, sender="writer@nomail.test")[0] == 250
    mx.wait_log(r"no DSN for 1 failed recipient \(null sender\)")
    assert "null MX" in mx.log()


def test_mx_downstream_preference(make_mx, dns, tmp_path):
    """downstream = "mx:DOMAIN:PORT": the lower preference wins (box2 at
    127.0.0.2), the other is the fallback."""
    from conftest import SmtpSink
    port = free_port()
    s2 = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"127.0.0.2:{port}", "100"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        import conftest
        conftest.wait_port(port, host="127.0.0.2")
        mx = make_mx(f"mx:mailbox.test:{port}", extra=queue_extra(tmp_path) +
                     f'\ndns = {{ resolver = "{dns.resolver}"; }};')
        assert send_message(mx.port)[0] == 250
        mx.wait_log(r"result=delivered .*box2\.mailbox\.test\[127\.0\.0\.2\]")
    finally:
        s2.terminate()
        s2.wait()
    # box2 gone: the next message falls back to box1 (127.0.0.1), where
    # nothing listens either, so it stays queued and says why
    assert send_message(mx.port)[0] == 250
    mx.wait_log(r"result=deferred .*box1\.mailbox\.test\[127\.0\.0\.1\]")


class ScriptedSmtp(LoopbackServer):
    """A minimal SMTP server whose RCPT replies are scripted per address
    (smtp-sink answers every recipient the same), and its reply to the
    final dot (after data_delay seconds)."""

    def __init__(self, rcpt_replies, data_reply="250 2.0.0 Ok", data_delay=0.0):
        self.rcpt_replies = rcpt_replies
        self.data_reply, self.data_delay = data_reply, data_delay
        self.rcpts = []
        self.datas = 0  # messages received in full (before the reply)
        super().__init__()

    def session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 scripted ESMTP\r\n")
        for line in f:
            cmd = line.decode(errors="replace").strip()
            verb = cmd.split(" ")[0].upper()
            if verb == "RCPT":
                addr = cmd[cmd.find("<") + 1:cmd.find(">")]
                self.rcpts.append(addr)
                reply = self.rcpt_replies.get(addr, "250 2.1.5 Ok")
            elif verb == "DATA":
                conn.sendall(b"354 go ahead\r\n")
                for data in f:
                    if data in (b".\r\n", b".\n"):
                        break
                self.datas += 1
                time.sleep(self.data_delay)
                reply = self.data_reply
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                break
            else:
                reply = "250 scripted" if verb in ("EHLO", "HELO") else "250 2.0.0 Ok"
            conn.sendall(reply.encode() + b"\r\n")


def refused_and_deferred(make_mx, down, bounces, tmp_path):
    """Sends one message to bob (refused for good: its DSN goes to bounces)
    and alice (deferred); returns the gateway and the queue id once the
    first attempt is over."""
    mx = make_mx(down.target, extra=queue_extra(tmp_path, bounces.port, retry='"1s"'))
    code, text = send_message(mx.port, sender="writer@remote.test",
                              rcpts=["alice@example.test", "bob@example.test"])
    assert code == 250
    qid = text.split()[-1]
    [dsn] = bounces.wait_messages(1)
    assert b"Final-Recipient: rfc822; bob@example.test" in dsn["message"]
    mx.wait_log(rf"queue id={qid} result=deferred delivered=0 failed=1 pending=1")
    return mx, qid


def test_restart_sends_no_second_dsn(make_mx, make_sink, tmp_path):
    """One recipient refused for good (DSN sent), one deferred: after a
    restart the retries of the deferred one do not report the refused one
    again (the spool state remembers the DSN)."""
    down = ScriptedSmtp({"bob@example.test": "550 5.1.1 No such user here",
                         "alice@example.test": "451 4.2.0 Mailbox busy"})
    bounces = make_sink()
    try:
        mx, qid = refused_and_deferred(make_mx, down, bounces, tmp_path)
        state = (tmp_path / "queue" / "q" / f"{qid}.st").read_text()
        assert "dsn 1\n" in state, state
        assert mx.stop() == 0
        before = len(re.findall(rf"queue id={qid} result=deferred", mx.log()))
        mx.start()
        mx.wait_log("queue: 1 message read back")
        # two more attempts at alice after the restart
        wait_for(lambda: len(re.findall(rf"queue id={qid} result=deferred", mx.log())) >= before + 2,
                 timeout=20, what="two retries after the restart")
        time.sleep(1)
        assert len(bounces.messages()) == 1, "a second DSN after the restart"
        assert len(re.findall(rf"queue id={qid} dsn=", mx.log())) == 1
        assert down.rcpts.count("bob@example.test") == 1  # never tried again
    finally:
        down.stop()


def test_dsn_after_restart_says_why(make_mx, make_sink, tmp_path):
    """A refusal whose DSN could not be queued (the spool full, say) is
    reported after a restart with the recipient's own status and reply,
    which the state file keeps ("why"), not a bare 5.0.0/5.4.4."""
    down = ScriptedSmtp({"bob@example.test": "550 5.1.1 No such user here",
                         "alice@example.test": "451 4.2.0 Mailbox busy"})
    bounces = make_sink()
    try:
        mx, qid = refused_and_deferred(make_mx, down, bounces, tmp_path)
        assert mx.stop() == 0
        # as if the DSN had not been queued: bob failed, not reported
        st = tmp_path / "queue" / "q" / f"{qid}.st"
        state = st.read_text()
        assert "fail 1\ndsn 1\n" in state, state
        st.write_text(state.replace("dsn 1\n", "why 1 5.1.1 550 5.1.1 No such user here\n"))
        mx.start()
        mx.wait_log("queue: 1 message read back")
        [first, second] = bounces.wait_messages(2)
        dsn = second["message"]
        assert b"Final-Recipient: rfc822; bob@example.test" in dsn
        assert b"Status: 5.1.1" in dsn, dsn
        assert b"Diagnostic-Code: smtp; 550 5.1.1 No such user here" in dsn, dsn
        assert down.rcpts.count("bob@example.test") == 1  # never tried again
    finally:
        down.stop()


def test_expired_recipient_dsn(make_mx, make_sink, tmp_path):
    """A recipient deferred until the queue lifetime runs out is reported
    as failed for good: status 5.4.7 (not its last try's 4.x.x), with
    that last reply as the diagnostic."""
    down = ScriptedSmtp({"alice@example.test": "451 4.2.0 Mailbox busy"})
    bounces = make_sink()
    try:
        mx = make_mx(down.target, extra=queue_extra(tmp_path, bounces.port, retry='"1s"',
                                                   more='lifetime = "2s";'))
        code, text = send_message(mx.port, sender="writer@remote.test", rcpts=["alice@example.test"])
        assert code == 250
        qid = text.split()[-1]
        [dsn] = bounces.wait_messages(1, timeout=20)
        body = dsn["message"]
        assert b"Final-Recipient: rfc822; alice@example.test" in body
        assert b"Status: 5.4.7" in body, body
        assert b"Diagnostic-Code: smtp; 451 4.2.0 Mailbox busy" in body, body
        assert re.search(rf"queue id={qid} expired after", mx.log())
    finally:
        down.stop()


def test_hold_during_an_attempt(make_mx, tmp_path):
    """A message held while it is being delivered stays held when that
    attempt is deferred: no retry until it is released."""
    down = ScriptedSmtp({}, data_reply="451 4.3.0 Try later", data_delay=2.0)
    try:
        mx = make_mx(down.target, extra=queue_extra(tmp_path, retry='"1s"'))
        code, text = send_message(mx.port)
        assert code == 250
        qid = text.split()[-1]
        wait_for(lambda: down.datas == 1, what="the first attempt's DATA")
        assert qctl(mx, "hold", qid) == (0, f"held {qid}\n")
        mx.wait_log(rf"queue id={qid} result=deferred")
        time.sleep(3)  # three retry intervals
        assert down.datas == 1, "a held message was tried again"
        assert qctl(mx, "list")[1].split()[3] == "held"
        assert qctl(mx, "release", qid)[0] == 0
        wait_for(lambda: down.datas == 2, what="an attempt after the release")
    finally:
        down.stop()


def test_mail_refused_for_now_is_retried(make_mx, make_sink, tmp_path):
    """A 451 to MAIL FROM defers every recipient: Postfix answers each
    pipelined RCPT after it with "503 5.5.1 need MAIL command", which the
    queue took for the recipients' own refusals and bounced the message for
    good (found in review, 2026-11-29). A 5xx to MAIL fails them all with
    that reply, and a 5xx to the DATA command is no reason to retry."""
    from peers import Postfix
    senders = tmp_path / "senders"
    senders.write_text("later@remote.test 451 4.7.1 Try again later\n"
                       "never@remote.test 553 5.7.1 Sender refused\n")
    pf = Postfix(mode="mailbox", mailboxes=["alice@example.test"], extra_main=f"""
smtpd_delay_reject = no
smtpd_sender_restrictions = check_sender_access texthash:{senders}
""").start()
    try:
        bounces = make_sink()
        mx = make_mx(f"smtp:127.0.0.1:{pf.port}", extra=queue_extra(tmp_path, bounces.port, retry='"60s"'))
        code, text = send_message(mx.port, sender="later@remote.test")
        assert code == 250
        later = text.split()[-1]
        code, text = send_message(mx.port, sender="never@remote.test")
        assert code == 250
        never = text.split()[-1]
        mx.wait_log(rf"queue id={later} result=deferred .*451 4\.7\.1")
        [dsn] = bounces.wait_messages(1)
        assert dsn["env"]["X-Rcpt-Args"] == ["<never@remote.test>"]
        assert b"Diagnostic-Code: smtp; 553 5.7.1" in dsn["message"], dsn["message"]
        assert b"503 5.5.1" not in dsn["message"]  # not the pipelined RCPTs' answer
        mx.wait_log(rf"queue id={never} result=bounced")
        time.sleep(1)
        assert len(bounces.messages()) == 1  # no DSN for the deferred one
        code, out = qctl(mx, "list")
        assert later in out and never not in out
    finally:
        pf.stop()


def test_data_refused_bounces_at_once(make_mx, make_sink, tmp_path):
    """A 554 to the DATA command (before any message was sent) is final: it
    used to leave the recipients pending for the queue's lifetime, and the
    DSN at expiry gave the RCPT's "250 2.1.5 Ok" as the reason."""
    down = make_sink(["-f", "data", "-B", "554 5.7.1 Policy rejection on DATA"])
    bounces = make_sink()
    mx = make_mx(down.target, extra=queue_extra(tmp_path, bounces.port, retry='"60s"'))
    code, text = send_message(mx.port, sender="writer@remote.test")
    assert code == 250
    qid = text.split()[-1]
    [dsn] = bounces.wait_messages(1)
    assert b"Diagnostic-Code: smtp; 554 5.7.1 Policy rejection on DATA" in dsn["message"], dsn["message"]
    assert b"250 2.1.5" not in dsn["message"]
    mx.wait_log(rf"queue id={qid} result=bounced delivered=0 failed=1 attempts=1")


def test_one_gateway_a_spool(make_mx, sink, tmp_path):
    """A second gateway on the same spool (an overlapping restart, a copy
    of the configuration) refuses to start: it used to deliver every queued
    message a second time, empty the first one's tmp/ and take over its
    control socket (found in review, 2026-11-29)."""
    mx = make_mx(sink.target, extra=queue_extra(tmp_path))
    r = subprocess.run([MXGUARD, "serve", "-c", str(mx.conf)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "is in use by another mxguard" in r.stderr, r.stderr
    # the first one still answers its control socket, and delivers
    assert qctl(mx, "list") == (0, "")
    assert send_message(mx.port)[0] == 250
    sink.wait_messages(1)
    # a queue command too long for any id is refused, not sent cut short
    code, out = qctl(mx, "show", "A" * 700)
    assert code != 0 and "no such message" in out, out


def test_queue_keeps_smtputf8(make_mx, tmp_path):
    """The queue delivers with SMTPUTF8 when the client sent with it: the
    spool kept no MAIL parameter, and a UTF-8 sender's message went out
    without it, to be refused by a mailbox server that checks (Postfix's
    strict_smtputf8) and bounced (found in review, 2026-11-29)."""
    from peers import Postfix
    pf = Postfix(mode="mailbox", mailboxes=["alice@example.test"],
                 extra_main="smtputf8_enable = yes\nstrict_smtputf8 = yes\n").start()
    try:
        mx = make_mx(f"smtp:127.0.0.1:{pf.port}", extra=queue_extra(tmp_path))
        c = Client(mx.port)
        c.ehlo()
        assert c.cmd("MAIL FROM:<\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae@remote.test> SMTPUTF8")[0] == 250
        assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: \u00fcber\r\n\r\nx\r\n.\r\n".encode())
        code, text = c.reply()
        assert code == 250
        c.cmd("QUIT")
        pf.wait_delivered("alice@example.test", 1)
        mx.wait_log(rf"queue id={text.split()[-1]} result=delivered")
    finally:
        pf.stop()


def test_retry_time_from_a_clock_ahead(make_mx, sink, tmp_path):
    """A retry time saved while the clock ran a year ahead (corrected
    since) is not waited for after a restart: the message sat until that
    date, past the queue's lifetime (found in review, 2026-11-29)."""
    port = free_port()
    mx = make_mx(f"smtp:127.0.0.1:{port}", extra=queue_extra(tmp_path, retry='"1s"'))
    qid = send_message(mx.port)[1].split()[-1]
    mx.wait_log(rf"queue id={qid} result=deferred")
    mx.stop()
    st = tmp_path / "queue" / "q" / f"{qid}.st"
    text = st.read_text()
    st.write_text(re.sub(r"next \d+", f"next {int(time.time()) + 365 * 86400}", text))
    mx.conf.write_text(mx.conf.read_text().replace(f"smtp:127.0.0.1:{port}", sink.target))
    mx.start()
    sink.wait_messages(1, timeout=20)
    mx.wait_log(rf"queue id={qid} result=delivered")


def test_file_target_debris(make_mx, tmp_path):
    """A file: target's temporary file left by a crash mid-write does not
    block the message: every retry failed with "File exists" until the
    message expired (found in review, 2026-11-29)."""
    out = tmp_path / "out"
    mx = make_mx(f"file:{out}", extra=queue_extra(tmp_path, retry='"60s"'))
    out.rmdir() if out.exists() else None
    qid = send_message(mx.port)[1].split()[-1]
    mx.wait_log(rf"queue id={qid} result=deferred")
    out.mkdir()
    (out / f".{qid}.tmp").write_bytes(b"half a message")
    assert qctl(mx, "flush")[0] == 0
    mx.wait_log(rf"queue id={qid} result=delivered")
    assert (out / f"{qid}.eml").read_bytes().endswith(b"\r\n")
    assert not (out / f".{qid}.tmp").exists()
