# Real peers started by tests and benchmarks, each in a folder of its own on
# loopback ports: a private Postfix instance (mailbox server, or relay).
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

from conftest_util import free_port, wait_for, wait_port


def _alive(pid):
    """True while the process runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class Postfix:
    """A private Postfix instance.

    mode="mailbox": accepts mail for `domains` and delivers it to maildirs
    (virtual(8)) under self.mail; `mailboxes` lists the addresses.
    mode="relay": relays mail for `domains` to `relayhost`, checking
    recipients against `mailboxes` (relay_recipient_maps), as the gateway
    peer in benchmarks.
    Postfix's daemons run as the postfix user, so the instance lives in a
    folder under /tmp that they can reach.
    """

    def __init__(self, mode="mailbox", domains=("example.test",), mailboxes=(),
                 relayhost=None, extra_main=""):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-postfix-"))
        os.chmod(self.dir, 0o755)
        self.conf = self.dir / "conf"
        self.queue = self.dir / "queue"
        self.data = self.dir / "data"
        self.mail = self.dir / "mail"
        for d in (self.conf, self.queue, self.data, self.mail):
            d.mkdir()
        shutil.chown(self.data, "postfix")
        os.chmod(self.mail, 0o777)
        self.port = free_port()
        self.maillog = self.dir / "maillog"
        doms = ", ".join(domains)
        main = f"""
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {self.data}
mail_owner = postfix
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.example.test
mydestination =
mynetworks = 127.0.0.0/8
maillog_file_prefixes = /tmp
maillog_file = {self.maillog}
smtputf8_enable = yes
biff = no
smtpd_banner = $myhostname ESMTP
"""
        table = self.conf / "mailboxes"
        if mode == "mailbox":
            table.write_text("".join(f"{m} {m}/\n" for m in mailboxes))
            main += f"""
virtual_mailbox_domains = {doms}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = texthash:{table}
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
"""
        else:
            table.write_text("".join(f"{m} OK\n" for m in mailboxes))
            main += f"""
relay_domains = {doms}
relay_recipient_maps = texthash:{table}
relayhost = [127.0.0.1]:{relayhost}
smtpd_relay_restrictions = reject_unauth_destination
smtp_connection_cache_on_demand = yes
"""
        (self.conf / "main.cf").write_text(main + extra_main)
        lines = []
        for line in pathlib.Path("/etc/postfix/master.cf").read_text().splitlines():
            f = line.split()
            if line[:1] in ("#", " ", "\t") or len(f) < 8:
                lines.append(line)
                continue
            if f[0] == "smtp" and f[1] == "inet":
                f[0] = f"127.0.0.1:{self.port}"
            f[4] = "n"  # no chroot: the instance lives in its own folder
            lines.append("  ".join(f[:8]) + (" " + " ".join(f[8:]) if len(f) > 8 else ""))
        (self.conf / "master.cf").write_text("\n".join(lines) + "\n")

    def postfix(self, *args):
        return subprocess.run(["postfix", "-c", str(self.conf), *args], capture_output=True,
                              text=True, timeout=60)

    def start(self):
        r = self.postfix("start")
        if r.returncode != 0:
            raise RuntimeError("postfix start failed: " + r.stdout + r.stderr + self.log())
        wait_port(self.port, timeout=20)
        return self

    def stop(self):
        try:
            pid = int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        self.postfix("stop")
        end = time.time() + 15
        while pid and time.time() < end and _alive(pid):
            time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def delivered(self, mailbox):
        """Messages delivered to a mailbox (maildir), oldest first."""
        new = self.mail / mailbox / "new"
        if not new.exists():
            return []
        files = sorted(new.iterdir(), key=lambda p: p.name)
        return [f.read_bytes() for f in files]

    def wait_delivered(self, mailbox, n, timeout=20):
        return wait_for(lambda: len(self.delivered(mailbox)) >= n and self.delivered(mailbox),
                        timeout, what=f"{n} messages in {mailbox}")


class Dnsmasq:
    """A DNS server for the test's own zones (dnsmasq, no upstream).

    records: list of dnsmasq options without the leading "--", e.g.
    "mx-host=remote.test,mx.remote.test,10", "host-record=mx.remote.test,127.0.0.1".
    Names it does not know get NXDOMAIN.
    """

    def __init__(self, records):
        self.port = free_port()
        argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", f"--port={self.port}",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--pid-file=", "--log-facility=/dev/null", "--address=/#/"]
        argv += ["--" + r for r in records]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError("dnsmasq: " + self.proc.stderr.read().decode())

    @property
    def resolver(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
