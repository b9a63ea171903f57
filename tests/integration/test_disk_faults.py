# A failing disk under the part of a message kept in a file (tmp_dir,
# past limits.memory_per_message): when the content filter cannot read the
# message back, the client gets 451 4.3.0 and the log says why. Scanning
# what could be read and relaying the rest would wave through a message
# that was never looked at.
#
# The fault is real I/O failing, not a mock of the gateway: a preloaded
# library makes pread() fail with EIO on the unlinked files of the
# gateway's tmp_dir, and on nothing else.
import subprocess

import pytest

from conftest import Client

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int
doomed(int fd)
{
	const char *dir = getenv("MX_TEST_EIO_DIR");
	char link[64], path[4096];
	if (dir == NULL)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	return strncmp(path, dir, strlen(dir)) == 0 && strstr(path, " (deleted)") != NULL;
}

#define WRAP(name)                                                             \
	ssize_t name(int fd, void *buf, size_t n, off_t off)                   \
	{                                                                      \
		static ssize_t (*real)(int, void *, size_t, off_t);            \
		if (doomed(fd)) {                                              \
			errno = EIO;                                           \
			return -1;                                             \
		}                                                              \
		if (real == NULL)                                              \
			real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, #name); \
		return real(fd, buf, n, off);                                  \
	}
WRAP(pread)
WRAP(pread64)
"""


@pytest.fixture(scope="module")
def eio_lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("eio")
    (d / "eio.c").write_text(SHIM)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(d / "eio.so"), str(d / "eio.c"),
                    "-ldl"], check=True)
    return d / "eio.so"


def failing_mx(make_mx, sink, eio_lib, extra):
    mx = make_mx(sink.target, start=False, extra=extra)
    mx.env["LD_PRELOAD"] = str(eio_lib)
    mx.env["MX_TEST_EIO_DIR"] = str(mx.tmp)
    # the sanitizer build's runtime must come first; this library only wraps
    # two calls and goes through to it
    mx.env["ASAN_OPTIONS"] = mx.env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    return mx.start()


def send(mx, data):
    c = Client(mx.port)
    c.ehlo()
    assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(data + b".\r\n")
    reply = c.reply()
    c.cmd("QUIT")
    return reply


BIG_BODY = b"Subject: big\r\n\r\n" + b"".join(b"line %05d of the body\r\n" % i for i in range(3000))
LONG_HEADERS = (b"Subject: long\r\n" +
                b"".join(b"X-Filler-%04d: %s\r\n" % (i, b"f" * 40) for i in range(200)) +
                b"\r\nbody\r\n")


@pytest.mark.parametrize("extra,data", [
    # the prefix the filter analyses is longer than what is held in memory
    ('limits = { memory_per_message = "4K"; };', BIG_BODY),
    # the prefix is in memory, but the header block goes on past it
    ('limits = { memory_per_message = "4K"; }; content = { scan_limit = "4K"; };', LONG_HEADERS),
], ids=["prefix", "header_block"])
def test_unreadable_body_is_tempfailed(make_mx, sink, eio_lib, extra, data):
    # the same message passes when the disk works
    ok = make_mx(sink.target, extra=extra)
    assert send(ok, data)[0] == 250
    assert len(sink.wait_messages(1)) == 1

    mx = failing_mx(make_mx, sink, eio_lib, extra)
    code, text = send(mx, data)
    assert (code, text) == (451, "4.3.0 Local error reading the message, try again later")
    mx.wait_log(r"cannot read the message body back: Input/output error")
    mx.wait_log(r" message id=\S+ .* result=tempfail .*reason=read_error")
    assert len(sink.messages()) == 1
