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


def make_ca_and_cert(folder, name="127.0.0.1"):
    """A test CA and a server certificate for `name` (an IP or a host name),
    signed by it. Returns (ca.pem, cert.pem, key.pem)."""
    folder = pathlib.Path(folder)
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "server.key",
                                                       "server.csr", "server.pem"))
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=mxguard test CA", "-keyout", str(ca_key),
        "-out", str(ca))
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    san = f"IP:{name}" if name.replace(".", "").isdigit() else f"DNS:{name}"
    ext = folder / "san.ext"
    ext.write_text(f"subjectAltName = {san}\nbasicConstraints = CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


LDAP_TEST_SCHEMA = """
# Active Directory's proxyAddresses, with a matching rule so filters can use it
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'proxyAddresses'
    DESC 'AD-style proxy addresses (mxguard tests)'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'mxgMailUser' SUP top AUXILIARY
    MAY ( proxyAddresses ) )
"""


class Slapd:
    """A private slapd (Debian's OpenLDAP): slapd.conf, schema and an mdb
    database in a folder of its own, on a loopback port (and an ldaps://
    port with a certificate made at start when tls=True).

    The directory: dc=example,dc=test with a reader account (simple bind),
    `users` generated people uid=userN with mail userN@example.test, and
    whatever `ldif` adds. Stats logging (-d 256) records every search, so
    tests can check what the directory was asked (searches()).
    """

    SUFFIX = "dc=example,dc=test"
    ROOT_DN, ROOT_PW = "cn=admin,dc=example,dc=test", "rootsecret"
    READER_DN, READER_PW = "cn=reader,dc=example,dc=test", "reader secret"

    def __init__(self, users=0, ldif="", tls=False):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-slapd-"))
        (self.dir / "db").mkdir()
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.logfile = self.dir / "slapd.log"
        self.conf = self.dir / "slapd.conf"
        self.proc = None
        (self.dir / "test.schema").write_text(LDAP_TEST_SCHEMA)
        tlsconf = ""
        if tls:
            self.ca, cert, key = make_ca_and_cert(self.dir)
            tlsconf = (f"TLSCACertificateFile {self.ca}\nTLSCertificateFile {cert}\n"
                       f"TLSCertificateKeyFile {key}\n")
        self.conf.write_text(f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {self.dir}/test.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {self.dir}/slapd.pid
sizelimit unlimited
{tlsconf}
database mdb
suffix "{self.SUFFIX}"
rootdn "{self.ROOT_DN}"
rootpw {self.ROOT_PW}
directory {self.dir}/db
maxsize 268435456
index objectClass eq
index mail eq
index proxyAddresses eq
index uid eq
access to attrs=userPassword by anonymous auth by * none
access to * by * read
""")
        entries = [f"""dn: {self.SUFFIX}
objectClass: dcObject
objectClass: organization
o: example
dc: example
""", f"""dn: {self.READER_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: {self.READER_PW}
""", f"""dn: ou=people,{self.SUFFIX}
objectClass: organizationalUnit
ou: people
"""]
        entries += [self.person(f"user{i}", [f"user{i}@example.test"]) for i in range(users)]
        (self.dir / "init.ldif").write_text("\n".join(entries) + "\n" + ldif)
        r = subprocess.run(["slapadd", "-q", "-f", str(self.conf), "-l", str(self.dir / "init.ldif")],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("slapadd failed: " + r.stdout + r.stderr)

    @classmethod
    def person(cls, uid, mails=(), proxy=()):
        """LDIF for one person under ou=people."""
        lines = [f"dn: uid={uid},ou=people,{cls.SUFFIX}", "objectClass: inetOrgPerson"]
        if proxy:
            lines.append("objectClass: mxgMailUser")
        lines += [f"uid: {uid}", f"cn: {uid}", f"sn: {uid}"]
        lines += [f"mail: {m}" for m in mails]
        lines += [f"proxyAddresses: {p}" for p in proxy]
        return "\n".join(lines) + "\n"

    @property
    def uri(self):
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def tls_uri(self):
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def start(self):
        urls = self.uri + "/" + (f" {self.tls_uri}/" if self.tls_port else "")
        self.log_fh = open(self.logfile, "ab")
        self.proc = subprocess.Popen(["slapd", "-f", str(self.conf), "-h", urls, "-d", "256"],
                                     stdout=self.log_fh, stderr=subprocess.STDOUT)
        wait_port(self.port, timeout=20)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log_fh.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _tool(self, tool, *args, data=None):
        r = subprocess.run([tool, "-x", "-H", self.uri, "-D", self.ROOT_DN, "-w", self.ROOT_PW,
                            *args], input=data, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"{tool} failed: {r.stdout}{r.stderr}")
        return r.stdout

    def add(self, ldif):
        return self._tool("ldapadd", data=ldif)

    def delete(self, dn):
        return self._tool("ldapdelete", dn)

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def searches(self):
        """Filters of every search the server received, in order (as slapd logs them)."""
        import re
        return re.findall(r' SRCH base="[^"]*" scope=\d deref=\d filter="(.*)"$', self.log(),
                          re.MULTILINE)


class Postgres:
    """A private PostgreSQL (initdb in a folder of its own, pg_ctl, loopback
    port, password authentication over TCP). PostgreSQL refuses to run as
    root: it runs as the "postgres" user, so the folder is under /tmp."""

    BIN = "/usr/lib/postgresql/15/bin"
    USER, PASSWORD, DB = "mxguard", "pg pass'word", "mail"

    def __init__(self):
        import glob
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        self.bin = os.path.dirname(bins[-1]) if bins else self.BIN
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.logfile = self.dir / "pg.log"
        shutil.chown(self.dir, "postgres", "postgres")
        (self.dir / "pw").write_text("bootstrap\n")
        shutil.chown(self.dir / "pw", "postgres", "postgres")
        self._as_pg(f"{self.bin}/initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                    "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
                    "--pwfile", str(self.dir / "pw"))
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                    "full_page_writes = off\nshared_buffers = 16MB\n"
                    "max_connections = 50\n")

    def _as_pg(self, *argv, data=None):
        r = subprocess.run(["runuser", "-u", "postgres", "--", *argv], input=data,
                           capture_output=True, text=True, timeout=120, cwd="/tmp")
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {r.stdout}{r.stderr}")
        return r.stdout

    def start(self):
        self._as_pg(f"{self.bin}/pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w",
                    "-t", "60", "start")
        return self

    def stop(self):
        try:
            self._as_pg(f"{self.bin}/pg_ctl", "-D", str(self.data), "-m", "fast", "-w",
                        "stop")
        except RuntimeError:
            pass

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, text, db="postgres"):
        """Runs SQL as the superuser over the local socket; returns psql's output."""
        return self._as_pg(f"{self.bin}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                           str(self.dir), "-p", str(self.port), "-d", db, "-At", data=text)

    @property
    def conninfo(self):
        pw = self.PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
        return (f"host=127.0.0.1 port={self.port} dbname={self.DB} user={self.USER} "
                f"password='{pw}' connect_timeout=5")


class Mariadb:
    """A private MariaDB server (mariadb-install-db + mariadbd in a folder of
    its own, loopback port and a socket there)."""

    USER, PASSWORD, DB = "mxguard", "my secret", "mail"

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mxguard-my-"))
        self.data = self.dir / "data"
        self.sock = self.dir / "mysqld.sock"
        self.port = free_port()
        self.logfile = self.dir / "error.log"
        self.proc = None
        r = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}",
                            "--user=root", "--auth-root-authentication-method=socket",
                            "--skip-test-db", "--skip-name-resolve"],
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise RuntimeError("mariadb-install-db failed: " + r.stdout + r.stderr)

    def start(self):
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--user=root", f"--datadir={self.data}",
             f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.sock}",
             f"--pid-file={self.dir}/mysqld.pid", f"--log-error={self.logfile}",
             "--skip-log-bin", "--skip-name-resolve", "--innodb-buffer-pool-size=16M",
             "--innodb-log-file-size=8M", "--innodb-flush-log-at-trx-commit=0",
             "--max-connections=200", "--general-log=1", f"--general-log-file={self.dir}/general.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.sock.exists() or self.proc.poll() is not None, 60,
                 what="mariadbd socket")
        if self.proc.poll() is not None:
            raise RuntimeError("mariadbd exited: " + self.log())
        wait_port(self.port, timeout=30)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def queries(self):
        """Statements the server ran (its general log)."""
        try:
            return (self.dir / "general.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def sql(self, text, db=None):
        argv = ["mariadb", "--no-defaults", f"--socket={self.sock}", "-uroot", "-N", "-B"]
        if db:
            argv.append(db)
        r = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("mariadb failed: " + r.stdout + r.stderr)
        return r.stdout
