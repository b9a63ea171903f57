# The command line: check-config, version, usage errors, start failures.
import json
import os
import pathlib
import subprocess

from conftest import MXGUARD, SOURCE


def run(*args):
    return subprocess.run([MXGUARD, *args], capture_output=True, text=True, timeout=30)


def test_check_config_ok_example():
    r = subprocess.run([MXGUARD, "check-config", "etc/mxguard.conf.example"], cwd=SOURCE,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "ok:" in r.stdout and "domains=1" in r.stdout


def test_check_config_errors(tmp_path):
    conf = tmp_path / "bad.conf"
    (tmp_path / "r").write_text("alice@example.test\nnot an address\n")
    conf.write_text(f"""listen = ["127.0.0.1:2525"];
domains = ["example.test"];
recipients = {{ file = "{tmp_path}/r"; }};
downstream = "smtp:127.0.0.1:2626";
limits = {{ mesage_size = "10M"; errors = 0; }};
""")
    r = run("check-config", str(conf))
    assert r.returncode == 1
    assert f"{conf}:5: unknown key 'limits.mesage_size' (did you mean 'limits.message_size'?)" in r.stderr
    assert f"{conf}:5: 'limits.errors' is 0; it must be between 1 and 10000" in r.stderr
    conf.write_text(conf.read_text().replace("mesage_size", "message_size").replace("errors = 0", "errors = 5"))
    r = run("check-config", str(conf))
    assert r.returncode == 1
    assert f"{tmp_path}/r:2: one address per line" in r.stderr
    (tmp_path / "r").write_text("alice@example.test\n")
    assert run("check-config", str(conf)).returncode == 0
    conf.write_text("listen = [\"127.0.0.1:2525\"\n")
    r = run("check-config", str(conf))
    assert r.returncode == 1 and f"{conf}:2: syntax error" in r.stderr


def test_version_and_usage():
    r = run("version")
    assert r.returncode == 0 and r.stdout.startswith("mxguard ")
    assert "libevent" in r.stdout and "OpenSSL" in r.stdout
    assert run("frobnicate").returncode == 2
    assert run().returncode == 2
    assert run("help").returncode == 0
    assert run("check-config").returncode == 2


def test_serve_refuses_bad_config(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("listen = [\"127.0.0.1:1\"];\n")
    r = run("serve", "-c", str(conf))
    assert r.returncode == 1
    assert "required key 'domains' is missing" in r.stderr
    assert "not started" in r.stderr


def test_serve_port_in_use(make_mx, sink):
    a = make_mx(sink.target)
    b = make_mx(sink.target, start=False)
    b.port = a.port
    b.write_config(sink.target)
    # SO_REUSEPORT would share the port between two processes of the same
    # user; a port held by another program without it is refused
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    b.port = s.getsockname()[1]
    b.write_config(sink.target)
    r = run("serve", "-c", str(b.conf))
    assert r.returncode == 1 and "cannot listen on" in r.stderr
    s.close()


def test_queue_and_blocks_config_option(tmp_path):
    """queue and blocks read -c FILE through the shared loader (errors as
    file:line, exit 1); without -c they use /etc/mxguard/mxguard.conf, or
    the built-in defaults when it does not exist."""
    conf = tmp_path / "bad.conf"
    conf.write_text('queue = { path = "/nowhere"; bogus = 1; };\n')
    for cmd in (["queue", "-c", str(conf), "list"], ["blocks", "-c", str(conf), "list"]):
        r = run(*cmd)
        assert r.returncode == 1, cmd
        assert f"{conf}:1: unknown key 'queue.bogus'" in r.stderr, r.stderr
    good = tmp_path / "good.conf"
    good.write_text(f'listen = ["127.0.0.1:2525"]; domains = ["example.test"];\n'
                    f'recipients = {{ file = "{tmp_path}/r"; }}; downstream = "smtp:127.0.0.1:2626";\n'
                    f'queue = {{ path = "{tmp_path}/spool"; }};\n')
    (tmp_path / "r").write_text("alice@example.test\n")
    r = run("queue", "-c", str(good), "list")
    assert f"{tmp_path}/spool" in r.stdout + r.stderr
    r = run("stats", "-c", str(conf))
    assert r.returncode == 1 and f"{conf}:1: unknown key 'queue.bogus'" in r.stderr, r.stderr
    r = run("stats", "-c", str(good), "extra")
    assert r.returncode == 2 and "usage: mxguard stats" in r.stderr
    for cmd in (["queue", "-h"], ["blocks", "-h"], ["stats", "-h"]):
        r = run(*cmd)
        assert r.returncode == 0 and r.stdout.startswith("usage: mxguard " + cmd[0] + " [-c FILE]")
    r = run("queue", "-x", "list")
    assert r.returncode == 2 and "usage: mxguard queue" in r.stderr
    if not os.path.exists("/etc/mxguard/mxguard.conf"):
        r = subprocess.run([MXGUARD, "queue", "list"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=30)
        # the built-in default spool, relative to the working directory
        assert "var/queue" in r.stdout + r.stderr


def test_scan_walks_each_folder_once(tmp_path):
    """Symbolic links back up a folder tree (two of them made the walk
    exponential: one message scanned hundreds of thousands of times) and
    two names for one folder: every folder is walked once; what is not a
    file or a folder is skipped with a word."""
    (tmp_path / "r").write_text("")
    conf = tmp_path / "mx.conf"
    conf.write_text(f'listen = ["127.0.0.1:1"]; domains = ["example.test"]; '
                    f'recipients = {{ file = "{tmp_path}/r"; }}; downstream = "smtp:127.0.0.1:2";\n')
    top = tmp_path / "mail"
    (top / "sub").mkdir(parents=True)
    (top / "m1").write_bytes(b"Subject: one\n\nhello\n")
    (top / "sub" / "m2").write_bytes(b"Subject: two\n\nhello\n")
    os.symlink(".", top / "a")
    os.symlink(".", top / "b")
    os.symlink("..", top / "sub" / "up")
    os.symlink("sub", top / "z-same")
    os.mkfifo(top / "fifo")
    r = subprocess.run([MXGUARD, "scan", "-c", str(conf), str(top)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert [l.split()[0] for l in r.stdout.splitlines()] == [f"{top}/m1", f"{top}/sub/m2"]
    for name in ("a", "b", "sub/up", "z-same"):
        assert f"mxguard: {top}/{name}: walked already under another name (a link), skipped" in r.stderr
    assert f"mxguard: {top}/fifo: not a file or a folder, skipped" in r.stderr
    # a folder named twice is walked once too; a link up to a folder not
    # walked yet is followed
    r = subprocess.run([MXGUARD, "scan", "-c", str(conf), str(top / "sub"), str(top / "z-same")],
                       capture_output=True, text=True, timeout=60)
    assert [l.split()[0] for l in r.stdout.splitlines()] == [f"{top}/sub/m2", f"{top}/sub/up/m1"]
    assert f"mxguard: {top}/z-same: walked already under another name (a link), skipped" in r.stderr


def test_scan_output_names_any_file(tmp_path):
    """Plain output is one line a message with PATH one field, whatever the
    file is called; --json lines are valid JSON even for names that are
    not UTF-8."""
    import json
    (tmp_path / "r").write_text("")
    conf = tmp_path / "mx.conf"
    conf.write_text(f'listen = ["127.0.0.1:1"]; domains = ["example.test"]; '
                    f'recipients = {{ file = "{tmp_path}/r"; }}; downstream = "smtp:127.0.0.1:2";\n')
    d = tmp_path / "m"
    d.mkdir()
    names = [b"a\nb", b"c d", b"e\xff\xc3\xa9\\", b"f\t\x7f"]
    for n in names:
        with open(os.path.join(os.fsencode(d), n), "wb") as f:
            f.write(b"Subject: x\n\nhello\n")
    r = subprocess.run([MXGUARD, "scan", "-c", str(conf), str(d)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = r.stdout.decode("utf-8").splitlines()
    assert [l.split(" ")[0] for l in rows] == [f"{d}/a\\x0ab", f"{d}/c\\x20d", f"{d}/e\\xff\u00e9\\x5c",
                                               f"{d}/f\\x09\\x7f"]
    assert all(len(l.split(" ")) == 4 and l.split(" ")[2] == "accept" for l in rows)
    r = subprocess.run([MXGUARD, "scan", "--json", "-c", str(conf), str(d)], capture_output=True, timeout=60)
    paths = [json.loads(l)["path"] for l in r.stdout.decode("utf-8").splitlines()]
    assert paths == [f"{d}/a\nb", f"{d}/c d", f"{d}/e\ufffd\u00e9\\", f"{d}/f\t\x7f"]


def test_scan_splits_mbox_at_separator_lines_only(tmp_path):
    """An mbox is split at its From_ lines ("From SENDER DATE" with a time);
    a body line that starts "From " and was not escaped stays in its
    message."""
    (tmp_path / "r").write_text("")
    conf = tmp_path / "mx.conf"
    conf.write_text(f'listen = ["127.0.0.1:1"]; domains = ["example.test"]; '
                    f'recipients = {{ file = "{tmp_path}/r"; }}; downstream = "smtp:127.0.0.1:2"; '
                    f'store = {{ path = "{tmp_path}/store"; }};\n')
    box = tmp_path / "box"
    box.write_bytes(b"From alice@example.test  Thu Aug 22 14:44:07 2002\n"
                    b"Subject: one\n\nFrom the desk of the CEO\nFrom here on\n"
                    b"From now on, we meet Mon at 10:30\n"  # a time alone is no date
                    b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n"
                    b"Subject: two\n\nhello\n"
                    b"From - Mon Jan 01 00:00:00 +0000 2024\r\n"
                    b"Subject: three\r\n\r\nFrom now\r\n")
    r = subprocess.run([MXGUARD, "scan", "--json", "-c", str(conf), str(box)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [l.split('"')[3] for l in r.stdout.splitlines()] == [f"{box}:1", f"{box}:2", f"{box}:3"]
    # the same through learn: three messages, the first one whole
    out = subprocess.run([MXGUARD, "learn", "--spam", "-c", str(conf), str(box)], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.startswith("learned 3, already known 0,"), (out.stdout, out.stderr)


def test_scan_finds_gtube_however_encoded(tmp_path):
    """GTUBE is found in the message as sent and in its decoded text: a
    mail program may send it base64 or quoted-printable encoded."""
    import base64
    (tmp_path / "r").write_text("")
    conf = tmp_path / "mx.conf"
    conf.write_text(f'listen = ["127.0.0.1:1"]; domains = ["example.test"]; '
                    f'recipients = {{ file = "{tmp_path}/r"; }}; downstream = "smtp:127.0.0.1:2";\n')
    g = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    b64 = base64.b64encode(g + b"\n")
    msgs = {
        "plain": b"Subject: t\n\n" + g + b"\n",
        "base64": b"Subject: t\nContent-Transfer-Encoding: base64\n\n" + b64 + b"\n",
        "qp": b"Subject: t\nContent-Transfer-Encoding: quoted-printable\n\n" + g[:40] + b"=\n" + g[40:] + b"\n",
        "html": b"Subject: t\nContent-Type: text/html\n\n<p>" + g[:10] + b"<b></b>" + g[10:] + b"</p>\n",
        "part": (b"Subject: t\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                 b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + b64 + b"\n--b--\n"),
        "not": b"Subject: t\n\n" + g.replace(b"GTUBE", b"GTUB") + b"\n",
    }
    for name, data in msgs.items():
        (tmp_path / name).write_bytes(data)
    r = subprocess.run([MXGUARD, "scan", "-c", str(conf), *[str(tmp_path / n) for n in msgs]],
                       capture_output=True, text=True, timeout=60)
    got = {pathlib.Path(l.split()[0]).name: l.split()[2:] for l in r.stdout.splitlines()}
    for name in msgs:
        if name == "not":
            assert got[name][0] == "accept" and "GTUBE" not in got[name][1:], (name, got[name])
        else:
            assert got[name] == ["reject", "GTUBE"], (name, got[name])


def test_scan_scores_every_symbol(tmp_path):
    """Past 64 symbols, a message's later ones were left out of its score:
    64 cheap rules (a meta rule's parts are scored 0, as docs/rules.md
    advises) pushed the lists, scored last, out (found in review,
    2026-11-29). Every symbol counts; only the names past 64 are left out,
    and the log says how many."""
    (tmp_path / "r").write_text("")
    rules = "".join(f"body W{i:02d} /\\bword{i:02d}\\b/ 0.0\n" for i in range(64))
    (tmp_path / "rules").write_text(rules + "deny_from @evil.test\ndeny_urlhost evil.test\n")
    conf = tmp_path / "mx.conf"
    conf.write_text(f'listen = ["127.0.0.1:1"]; domains = ["example.test"]; '
                    f'recipients = {{ file = "{tmp_path}/r"; }}; downstream = "smtp:127.0.0.1:2"; '
                    f'content = {{ rules = "{tmp_path}/rules"; }};\n')
    words = " ".join(f"word{i:02d}" for i in range(64))
    (tmp_path / "m").write_text(f"From: spammer@evil.test\nSubject: x\n\n{words} http://evil.test/\n")
    (tmp_path / "few").write_text("From: spammer@evil.test\nSubject: x\n\nhi http://evil.test/\n")
    r = subprocess.run([MXGUARD, "scan", "--json", "-c", str(conf), str(tmp_path / "m"), str(tmp_path / "few")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    many, few = (json.loads(l) for l in r.stdout.splitlines())
    assert few["action"] == "reject" and few["score"] >= 12, few
    assert many["score"] == few["score"], (many["score"], few["score"])
    assert many["action"] == "reject"
    assert len(many["symbols"]) == 64


def test_scan_exit_codes_say_what_failed(tmp_path):
    """A file in a folder that cannot be read, and output that cannot be
    written, give exit code 1 (both gave 0: a cron job that learns a folder
    and then empties it would lose what it never learned; found in review,
    2026-11-29)."""
    (tmp_path / "r").write_text("")
    conf = tmp_path / "mx.conf"
    conf.write_text(f'listen = ["127.0.0.1:1"]; domains = ["example.test"]; '
                    f'recipients = {{ file = "{tmp_path}/r"; }}; downstream = "smtp:127.0.0.1:2";\n')
    d = tmp_path / "folder"
    d.mkdir()
    (d / "ok.eml").write_text("Subject: hi\n\nhello\n")
    (d / "gone.eml").symlink_to(tmp_path / "nowhere")
    r = subprocess.run([MXGUARD, "scan", "-c", str(conf), str(d)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "ok.eml" in r.stdout and "gone.eml" in r.stderr, (r.returncode, r.stderr)
    with open("/dev/full", "w") as full:
        r = subprocess.run([MXGUARD, "scan", "-c", str(conf), str(d / "ok.eml")], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 1 and "cannot write the output" in r.stderr, r.stderr
