# Hostile input: over-long command lines and message lines, oversize
# messages, error limits, connection limits, clients that do not read.
import os
import socket
import subprocess
import time

from conftest import Client, send_message


def test_long_command_line(mx):
    c = Client(mx.port)
    c.ehlo()
    assert c.cmd("NOOP " + "x" * 505)[0] == 250      # 511 octets with CRLF: fine
    code, text = c.cmd("NOOP " + "x" * 600)
    assert (code, text) == (500, "5.5.2 Line too long")
    # the rest of the long line was skipped; the session goes on
    assert c.cmd("NOOP")[0] == 250
    # a huge line without end: one error, bounded memory, still in sync
    c.send(b"A" * 200000)
    assert c.reply() == (500, "5.5.2 Line too long")
    c.send(b"\r\nNOOP\r\n")
    assert c.reply()[0] == 250


def test_long_message_lines(make_mx, sink):
    mx = make_mx(sink.target, extra="limits = { line_length = 20000; };")
    long_line = b"y" * 5000
    code, _ = send_message(mx.port, body=b"Subject: long\r\n\r\n" + long_line + b"\r\nend\r\n")
    assert code == 250
    [m] = sink.wait_messages(1)
    assert long_line + b"\nend\n" in m["message"]       # passed on intact, not folded
    code, text = send_message(mx.port, body=b"Subject: longer\r\n\r\n" + b"z" * 20001 + b"\r\n")
    assert (code, text[:5]) == (554, "5.6.0"), text
    assert len(sink.messages()) == 1


def test_message_size(make_mx, sink):
    mx = make_mx(sink.target, extra='limits = { message_size = "64k"; };')
    c = Client(mx.port)
    code, text = c.ehlo()
    assert "SIZE 65536" in text
    assert c.cmd("MAIL FROM:<a@remote.test> SIZE=70000") == \
        (552, "5.3.4 Message size exceeds fixed limit")
    assert c.cmd("MAIL FROM:<a@remote.test> SIZE=1000")[0] == 250
    c.cmd("RCPT TO:<alice@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: big\r\n\r\n" + (b"0123456789" * 100 + b"\r\n") * 100 + b".\r\n")
    assert c.reply() == (552, "5.3.4 Message size exceeds fixed limit")
    # the session is still usable
    assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
    assert sink.messages() == []
    assert "result=rejected" in mx.log() and "reason=too_big" in mx.log()


def test_error_limit(make_mx, sink):
    mx = make_mx(sink.target, extra="limits = { errors = 3; };")
    c = Client(mx.port)
    c.ehlo()
    assert c.cmd("XYZZY")[0] == 500
    assert c.cmd("PLUGH")[0] == 500
    assert c.cmd("FOO")[0] == 500
    assert c.reply() == (421, "4.7.0 Too many errors, closing connection")
    assert c.closed()


def test_http_request_hung_up(mx):
    c = Client(mx.port)
    code, _ = c.cmd("GET / HTTP/1.1")
    assert code == 500
    assert c.closed()


def test_connections_per_ip(make_mx, sink):
    mx = make_mx(sink.target, extra="limits = { connections_per_ip = 3; };")
    held = [Client(mx.port) for _ in range(3)]
    c = Client(mx.port, greeting=False)
    assert c.reply() == (421, "4.7.0 Too many connections from your address, try again later")
    assert c.closed()
    held[0].cmd("QUIT")
    held[0].close()
    time.sleep(0.2)
    ok = Client(mx.port)
    assert ok.greeting[0] == 220


def test_client_that_does_not_read(make_mx, sink):
    """Pipelining thousands of commands without reading replies must not grow
    the server's memory without bound: the server stops reading."""
    mx = make_mx(sink.target)
    s = socket.create_connection(("127.0.0.1", mx.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(0.5)
    sent = 0
    chunk = b"NOOP\r\n" * 1000
    try:
        while sent < 50_000_000:
            s.sendall(chunk)
            sent += len(chunk)
    except (socket.timeout, BlockingIOError):
        pass
    # the server stopped reading long before 50 MB
    assert sent < 20_000_000
    # and it is still serving others
    assert send_message(mx.port)[0] == 250
    s.close()


def test_listen_backlog(mx):
    """The accept queue is the 4096 mxguard listens with. libevent, told -1,
    would listen() again with 128: a burst of connections (a busy MX, a
    sender's reconnect storm) then overflows it, the kernel drops the
    handshake's last ACK, and clients that wait for the greeting hang (seen
    with 10,000 connections in bench/idle.py)."""
    import subprocess
    out = subprocess.run(["ss", "-ltnH", f"sport = :{mx.port}"], capture_output=True,
                         text=True, check=True).stdout
    queues = [int(line.split()[2]) for line in out.splitlines() if line.startswith("LISTEN")]
    # the kernel caps a backlog at net.core.somaxconn (4096 by default)
    want = min(4096, int(open("/proc/sys/net/core/somaxconn").read()))
    assert queues, out
    assert all(q == want for q in queues), out


def test_out_of_descriptors_does_not_spin(make_mx, sink):
    """Out of file descriptors, accept fails with the connection still
    pending: the listener pauses (100 ms) instead of retrying at once, which
    spun a core at 100 % and flooded the log (found in review, 2026-11-29);
    once descriptors are free again, clients are served."""
    mx = make_mx(sink.target)
    subprocess.run(["prlimit", "--pid", str(mx.proc.pid), "--nofile=60:60"], check=True)

    def cpu():
        f = open(f"/proc/{mx.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    held = []
    for _ in range(80):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", mx.port))
        except OSError:
            s.close()
            break
        held.append(s)
    time.sleep(0.5)
    before = cpu()
    time.sleep(2)
    used = cpu() - before
    for s in held:
        s.close()
    assert used < 0.5, f"{used:.2f} s of CPU in 2 s while out of descriptors"
    time.sleep(0.5)
    assert send_message(mx.port)[0] == 250
