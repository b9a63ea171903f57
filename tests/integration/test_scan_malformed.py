# A generated set of malformed messages through `mxguard scan` (the
# sanitizer build runs this too): every message gets its line, nothing
# crashes, and time stays bounded.
import json
import random
import subprocess
import time

from conftest import MXGUARD

BASE = (b"From: a@remote.test\r\nTo: b@example.test\r\nSubject: =?utf-8?B?aGVsbG8=?=\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"BB\"\r\n\r\n"
        b"--BB\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 http://x.test/\r\n"
        b"--BB\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"PGI+aGk8L2I+\r\n--BB--\r\n")


def generated():
    out = {}
    out["deep"] = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
                           for i in range(800)) + b"\r\ndeep\r\n"
    out["long_header"] = b"Subject: " + b"A" * 3_000_000 + b"\r\n\r\nbody\r\n"
    out["many_headers"] = b"".join(b"X-H%d: v\r\n" % i for i in range(50000)) + b"\r\nb\r\n"
    out["many_parts"] = (b"Content-Type: multipart/mixed; boundary=P\r\n\r\n" +
                         b"--P\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 20000 + b"--P--\r\n")
    out["bad_base64"] = (b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                         b"!!!!====@@@@\x00\x01" * 1000)
    out["bad_qp"] = (b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                     + b"=ZZ=\r\n=" * 1000)
    out["nul_bytes"] = b"Subject: n\r\n\r\n" + b"\x00" * 100000
    out["bad_charset"] = b"Content-Type: text/plain; charset=\"\x01\xff\"\r\n\r\n\xe9\xe8\r\n"
    out["utf7"] = b"Content-Type: text/plain; charset=utf-7\r\n\r\n+AGEAYgBj-\r\n"
    out["unterminated"] = b"Content-Type: multipart/mixed; boundary=U\r\n\r\n--U\r\n\r\n" + b"x" * 10000
    out["empty"] = b""
    out["headers_only"] = b"Subject: x\r\n"
    out["html_bomb"] = (b"Content-Type: text/html\r\n\r\n" + b"<a href=\"http://" + b"x" * 5000 + b"\">"
                        + b"<script>" * 10000 + b"&#99999999999;" * 1000)
    out["rfc822_loop"] = (b"Content-Type: message/rfc822\r\n\r\n" * 500) + b"Subject: in\r\n\r\nx\r\n"
    out["binary"] = bytes(random.Random(1).randrange(256) for _ in range(200000))
    rnd = random.Random(7)
    for k in range(60):  # mutations of a valid message
        b = bytearray(BASE)
        for _ in range(rnd.randrange(1, 30)):
            op = rnd.randrange(3)
            i = rnd.randrange(len(b))
            if op == 0:
                b[i] = rnd.randrange(256)
            elif op == 1:
                del b[i:i + rnd.randrange(1, 20)]
            else:
                b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 20)))
        out[f"mutant{k:02d}"] = bytes(b)
    return out


def test_malformed_corpus(tmp_path):
    msgs = generated()
    d = tmp_path / "malformed"
    d.mkdir()
    for name, data in msgs.items():
        # every file needs a header line at the top to count as a message
        (d / name).write_bytes(data if data[:1].isalpha() else b"X-Test: " + name.encode() + b"\r\n" + data)
    start = time.time()
    r = subprocess.run([MXGUARD, "scan", "--json", str(d)], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    lines = [json.loads(line) for line in r.stdout.decode().splitlines()]
    scanned = {l["path"].rsplit("/", 1)[1] for l in lines}
    skipped = r.stderr.decode().count("not a message")
    assert len(scanned) + skipped >= len(msgs) - 1  # "empty" has nothing to scan
    for l in lines:
        assert l["action"] in ("reject", "tempfail", "tag", "accept")
        assert 0 <= l["spam_probability"] <= 1
    deep = next(l for l in lines if l["path"].endswith("/deep"))
    assert "MIME_TOO_DEEP" in [s["name"] for s in deep["symbols"]]
    print(f"{len(lines)} messages in {time.time() - start:.1f} s")
