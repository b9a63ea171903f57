# Recipient verification against a real slapd: users, aliases, an AD-style
# proxyAddresses entry, filter injection, bind and TLS, failover, the cache's
# TTLs, the directory going down (451, recovery) and the local replica that
# goes on answering meanwhile. One slapd for the module.
import time

import pytest

from conftest import Client, free_port, rcpt_codes, rcpt_replies, wait_for
from peers import Slapd

AD_FILTER = "(|(mail=%s)(proxyAddresses=smtp:%s))"

LDIF = "\n".join([
    Slapd.person("alice", ["alice@example.test", "a.smith@example.test"]),
    Slapd.person("carol", proxy=["SMTP:carol@example.test", "smtp:c.jones@example.test",
                                 "X500:/o=Example/ou=Exchange/cn=carol"]),
    Slapd.person("star", ["st*r@example.test"]),
])


@pytest.fixture(scope="module")
def slapd():
    s = Slapd(users=40, ldif=LDIF, tls=True).start()
    yield s
    s.cleanup()


def ldap_conf(slapd, uris=None, filter=AD_FILTER, bind=True, extra="", cache=(0, 0),
              password=None):
    uris = uris or [slapd.uri]
    b = (f'bind_dn = "{slapd.READER_DN}"; bind_password = "{password or slapd.READER_PW}";'
         if bind else "")
    return (f'ldap = {{ uris = [{", ".join(repr(u).replace(chr(39), chr(34)) for u in uris)}]; '
            f'base = "{slapd.SUFFIX}"; filter = "{filter}"; {b} {extra} }}; '
            f'cache = {{ positive_ttl = {cache[0]}; negative_ttl = {cache[1]}; }}; '
            f'timeout = "2s";')


def test_users_aliases_proxyaddresses(make_mx, sink, slapd):
    mx = make_mx(sink.target, recipients_conf=ldap_conf(slapd))
    n = len(slapd.searches())
    assert rcpt_codes(mx.port, "alice@example.test", "a.smith@example.test", "User7@Example.Test",
                 "carol@example.test", "c.jones@example.test", "CAROL@example.test",
                 "alice+news@example.test", "nobody@example.test", "user40@example.test",
                 "/o=Example/ou=Exchange/cn=carol@example.test") == \
        [250, 250, 250, 250, 250, 250, 250, 550, 550, 550]
    asked = slapd.searches()[n:]
    # the address, lowercased, into both halves of the filter; then the
    # catch-all probe for an unknown one
    assert "(|(mail=nobody@example.test)(proxyAddresses=smtp:nobody@example.test))" in asked
    assert "(|(mail=@example.test)(proxyAddresses=smtp:@example.test))" in asked
    assert "(|(mail=user7@example.test)(proxyAddresses=smtp:user7@example.test))" in asked
    # an extension: the whole address first, then without it
    i = asked.index("(|(mail=alice+news@example.test)(proxyAddresses=smtp:alice+news@example.test))")
    assert asked[i + 1] == "(|(mail=alice@example.test)(proxyAddresses=smtp:alice@example.test))"
    r = rcpt_replies(mx.port, "nobody@example.test")[0]
    assert r == (550, "5.1.1 <nobody@example.test>: Recipient address rejected: user unknown")
    mx.wait_log(r"ldap: connected to ldap://127\.0\.0\.1:\d+")

    # OpenLDAP style: mail only; the proxyAddresses-only entry does not exist for it
    mx2 = make_mx(sink.target, recipients_conf=ldap_conf(slapd, filter="(mail=%s)", bind=False))
    assert rcpt_codes(mx2.port, "alice@example.test", "carol@example.test", "c.jones@example.test") == \
        [250, 550, 550]

    # %u and %d: the local part against uid; the catch-all key has no local
    # part, so that search is never sent
    mx3 = make_mx(sink.target, recipients_conf=ldap_conf(
        slapd, filter="(&(uid=%u)(objectClass=inetOrgPerson)(!(o=%d)))"))
    n = len(slapd.searches())
    assert rcpt_codes(mx3.port, "alice@example.test", "a.smith@example.test", "carol@example.test",
                 "user9@example.test") == [250, 550, 250, 250]
    asked = slapd.searches()[n:]
    assert "(&(uid=a.smith)(objectClass=inetOrgPerson)(!(o=example.test)))" in asked
    assert not any("uid=)" in f for f in asked), asked


def test_filter_injection(make_mx, sink, slapd):
    """Addresses with * ( ) \\ are values, never filter syntax: none of them
    matches an entry, and the directory was asked for them literally."""
    mx = make_mx(sink.target, recipients_conf=ldap_conf(slapd, filter="(mail=%s)"))
    n = len(slapd.searches())
    evil = ["*@example.test", "user1*@example.test", '"*)(mail=*"@example.test',
            '"alice)(|(mail=*"@example.test', '"\\\\2a"@example.test', "st*r@example.test"]
    assert rcpt_codes(mx.port, *evil) == [550, 550, 550, 550, 550, 250]
    asked = slapd.searches()[n:]
    # slapd logs the filters it parsed: the specials arrived as escaped values
    assert "(mail=\\2A@example.test)" in asked
    assert "(mail=user1\\2A@example.test)" in asked
    assert any(f.startswith('(mail="\\2A\\29\\28mail=\\2A"@example.test') for f in asked), asked
    assert any("\\5C" in f for f in asked), asked
    # each asked exactly one equality filter: no injected (|...) or presence test
    for f in asked:
        assert f.count("(") == 1 and f.count(")") == 1, f


def test_bind_failure_is_tempfail(make_mx, sink, slapd):
    secret = "wrong-Password-123"
    mx = make_mx(sink.target, recipients_conf=ldap_conf(slapd, password=secret))
    assert rcpt_replies(mx.port, "alice@example.test", "nobody@example.test") == \
        [(451, "4.4.3 <alice@example.test>: Recipient directory unavailable, try again later"),
         (451, "4.4.3 <nobody@example.test>: Recipient directory unavailable, try again later")]
    mx.wait_log(r"ldap ldap://127\.0\.0\.1:\d+: cannot connect .*bind: Invalid credentials")
    assert secret not in mx.log()


def test_tls(make_mx, sink, slapd, tmp_path):
    # ldaps:// with the test CA
    mx = make_mx(sink.target, recipients_conf=ldap_conf(
        slapd, uris=[slapd.tls_uri], extra=f'tls_ca = "{slapd.ca}";'))
    assert rcpt_codes(mx.port, "alice@example.test", "nobody@example.test") == [250, 550]
    mx.wait_log(r"ldap: connected to ldaps://127\.0\.0\.1:\d+\n")
    # StartTLS on ldap://
    mx2 = make_mx(sink.target, recipients_conf=ldap_conf(
        slapd, extra=f'starttls = true; tls_ca = "{slapd.ca}";'))
    assert rcpt_codes(mx2.port, "carol@example.test", "nobody@example.test") == [250, 550]
    mx2.wait_log(r"ldap: connected to ldap://127\.0\.0\.1:\d+ \(StartTLS\)")
    # a certificate from another CA: no connection, 451 (never a plaintext fallback)
    from peers import make_ca_and_cert
    other = tmp_path / "otherca"
    other.mkdir()
    other_ca, _, _ = make_ca_and_cert(other)
    for uris, extra in (([slapd.tls_uri], f'tls_ca = "{other_ca}";'),
                        ([slapd.uri], f'starttls = true; tls_ca = "{other_ca}";')):
        mx3 = make_mx(sink.target, recipients_conf=ldap_conf(slapd, uris=uris, extra=extra))
        assert rcpt_codes(mx3.port, "alice@example.test", "nobody@example.test") == [451, 451]
        mx3.wait_log(r"cannot connect .*(StartTLS|Can't contact LDAP server|certificate)")


def test_slow_directory(make_mx, sink, slapd):
    """A directory that accepts connections and never answers: lookups wait
    at most recipients.timeout and get 451; meanwhile every other session is
    served at once."""
    import socket
    import threading
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    held = []
    stop = threading.Event()

    def accept():
        hole.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(hole.accept()[0])  # and never read or answer
            except socket.timeout:
                pass
    t = threading.Thread(target=accept)
    t.start()
    try:
        mx = make_mx(sink.target, recipients_conf=ldap_conf(
            slapd, uris=[f"ldap://127.0.0.1:{hole.getsockname()[1]}"]))
        waiting = []
        for i in range(4):
            c = Client(mx.port)
            c.ehlo()
            c.cmd("MAIL FROM:<s@remote.test>")
            c.send(f"RCPT TO:<user{i}@example.test>\r\n")
            waiting.append((c, time.monotonic()))
        # other sessions, on every worker, are not held up
        for _ in range(6):
            t0 = time.monotonic()
            c = Client(mx.port)
            assert c.ehlo()[0] == 250
            assert c.cmd("MAIL FROM:<s@remote.test>")[0] == 250
            assert c.cmd("NOOP")[0] == 250
            assert time.monotonic() - t0 < 0.5
            c.close()
        for c, t0 in waiting:
            assert c.reply()[0] == 451
            assert 1.5 < time.monotonic() - t0 < 5
            c.close()
        assert held, "mxguard never connected to the silent directory"
    finally:
        stop.set()
        t.join()
        for h in held:
            h.close()
        hole.close()


def test_failover(make_mx, sink, slapd):
    dead = f"ldap://127.0.0.1:{free_port()}"
    mx = make_mx(sink.target, recipients_conf=ldap_conf(slapd, uris=[dead, slapd.uri]))
    assert rcpt_codes(mx.port, "alice@example.test", "nobody@example.test") == [250, 550]
    mx.wait_log(rf"ldap: connected to {slapd.uri}\n")
    assert f"connected to {dead}" not in mx.log()


def test_cache_ttl(make_mx, sink, slapd):
    mx = make_mx(sink.target, recipients_conf=ldap_conf(slapd, cache=(2, 2)))
    assert rcpt_codes(mx.port, "newbie@example.test", "alice@example.test") == [550, 250]
    time.sleep(0.2)  # the cache is written behind (50 ms)
    slapd.add(Slapd.person("newbie", ["newbie@example.test"]))
    try:
        n = len(slapd.searches())
        # both answers come from the cache: the directory is not asked
        assert rcpt_codes(mx.port, "newbie@example.test", "alice@example.test") == [550, 250]
        assert slapd.searches()[n:] == []
        time.sleep(2.6)  # past both TTLs
        assert rcpt_codes(mx.port, "newbie@example.test") == [250]
        assert len(slapd.searches()) > n
        time.sleep(0.2)
        slapd.delete(f"uid=newbie,ou=people,{slapd.SUFFIX}")
        assert rcpt_codes(mx.port, "newbie@example.test") == [250]  # positive answer cached
        time.sleep(2.6)
        assert rcpt_codes(mx.port, "newbie@example.test") == [550]
    finally:
        try:
            slapd.delete(f"uid=newbie,ou=people,{slapd.SUFFIX}")
        except RuntimeError:
            pass


def test_empty_replica_is_refused(make_mx, sink, slapd):
    """A replica filter that matches nothing (a mistake) must not turn every
    recipient into "user unknown", not even for the first copy: the sync is
    refused and lookups keep going to the directory."""
    mx = make_mx(sink.target, recipients_conf=ldap_conf(
        slapd, extra='replica = { interval = "2s"; filter = "(mail=no-such-entry*)"; '
                     'attributes = ["mail"]; };'))
    mx.wait_log(r"ldap replica .*: sync failed: the directory returned no address")
    n = len(slapd.searches())
    assert rcpt_codes(mx.port, "alice@example.test", "nobody@example.test") == [250, 550]
    assert len(slapd.searches()) > n  # asked the directory, not an empty copy
    assert "synced 0 addresses" not in mx.log()


def test_wrong_base_is_tempfail(make_mx, sink, slapd):
    """A base that does not exist (noSuchObject) is a configuration error,
    not "user unknown": 451."""
    conf = ldap_conf(slapd).replace(f'base = "{slapd.SUFFIX}"', f'base = "ou=nowhere,{slapd.SUFFIX}"')
    assert "ou=nowhere" in conf
    mx = make_mx(sink.target, recipients_conf=conf)
    assert rcpt_codes(mx.port, "alice@example.test", "nobody@example.test") == [451, 451]
    mx.wait_log(r"ldap ldap://127\.0\.0\.1:\d+: search failed: No such object")


def test_directory_down_replica_answers(make_mx, sink, slapd):
    """slapd stops: live lookups get 451 (never 550 or 250), the replica goes
    on answering; slapd comes back: live lookups recover; the replica picks up
    a change at its next sync. (Last in the module: it restarts slapd.)"""
    live = make_mx(sink.target, recipients_conf=ldap_conf(slapd))
    replica = make_mx(sink.target, recipients_conf=ldap_conf(
        slapd, extra='replica = { interval = "2s"; filter = "(|(mail=*)(proxyAddresses=*))"; '
                     'attributes = ["mail", "proxyAddresses"]; };'))
    replica.wait_log(r"ldap replica .*: synced 45 addresses \(45 added, 0 removed, 1 values skipped\)")
    check = ["alice@example.test", "a.smith@example.test", "c.jones@example.test",
             "user3+x@example.test", "nobody@example.test"]
    assert rcpt_codes(live.port, *check) == [250, 250, 250, 250, 550]
    assert rcpt_codes(replica.port, *check) == [250, 250, 250, 250, 550]
    # the replica answers without asking the directory
    n = len(slapd.searches())
    assert rcpt_codes(replica.port, "user5@example.test", "ghost@example.test") == [250, 550]
    assert slapd.searches()[n:] == []

    slapd.stop()
    try:
        assert rcpt_replies(live.port, "alice@example.test", "nobody@example.test") == \
            [(451, "4.4.3 <alice@example.test>: Recipient directory unavailable, try again later"),
             (451, "4.4.3 <nobody@example.test>: Recipient directory unavailable, try again later")]
        live.wait_log(r"ldap ldap://127\.0\.0\.1:\d+: (connection lost|cannot connect)")
        t = time.time()
        assert rcpt_codes(replica.port, *check) == [250, 250, 250, 250, 550]
        assert time.time() - t < 1.0
        replica.wait_log(r"ldap replica .*: sync failed: .*the copy stays as it was", timeout=15)
        assert rcpt_codes(replica.port, *check) == [250, 250, 250, 250, 550]
    finally:
        slapd.start()
    # back: within the reconnect back-off (at most 10 s)
    wait_for(lambda: rcpt_codes(live.port, "alice@example.test") == [250], 15, "live lookups recover")
    assert rcpt_codes(live.port, "nobody@example.test") == [550]
    # a new mailbox reaches the replica at its next sync
    slapd.add(Slapd.person("dora", ["dora@example.test"]))
    assert rcpt_codes(replica.port, "dora@example.test") == [550]
    replica.wait_log(r"synced 46 addresses \(1 added, 0 removed", timeout=20)
    assert rcpt_codes(replica.port, "dora@example.test") == [250]
    for mx in (live, replica):
        assert "451" not in str(rcpt_codes(mx.port, "alice@example.test"))


def test_referral_is_not_user_unknown(make_mx, sink):
    """Part of the tree on another server (a referral object here; Active
    Directory's child domains searched from the root): a search that gets a
    continuation reference and no entry is 451, not 550, and a replica that
    would miss the referred part is not taken (both were "user unknown",
    cached, in review on 2026-11-29)."""
    S = Slapd
    branch = Slapd(ldif="\n".join([
        f"dn: ou=branch,{S.SUFFIX}\nobjectClass: organizationalUnit\nou: branch\n",
        f"dn: uid=bob,ou=branch,{S.SUFFIX}\nobjectClass: inetOrgPerson\nuid: bob\ncn: bob\nsn: bob\n"
        f"mail: bob@example.test\n"])).start()
    main = Slapd(users=3, ldif=f"dn: ou=branch,{S.SUFFIX}\nobjectClass: referral\n"
                               f"objectClass: extensibleObject\nou: branch\n"
                               f"ref: ldap://127.0.0.1:{branch.port}/ou=branch,{S.SUFFIX}\n").start()
    try:
        mx = make_mx(sink.target, recipients_conf=ldap_conf(main))
        assert rcpt_codes(mx.port, "user1@example.test", "bob@example.test") == [250, 451]
        mx.wait_log(r"search failed: Referral")
        mx.stop()
        mx2 = make_mx(sink.target, recipients_conf=ldap_conf(main, extra='replica = { interval = "10m"; };'))
        mx2.wait_log(r"ldap replica .*sync failed: .*continuation reference")
        assert "synced" not in mx2.log()
    finally:
        main.stop()
        main.cleanup()
        branch.stop()
        branch.cleanup()


def test_replica_stamp_from_a_clock_ahead(make_mx, sink, tmp_path):
    """A replica stamped by a clock that ran a day ahead (stepped back
    since) syncs at once: it waited that day out, refusing new mailboxes
    with 550 (found in review, 2026-11-29)."""
    import re
    import subprocess
    d = Slapd(users=3).start()
    try:
        conf = ldap_conf(d, extra='replica = { interval = "10m"; };')
        mx = make_mx(sink.target, recipients_conf=conf)
        mx.wait_log(r"ldap replica .*: synced 3 addresses")
        mx.stop()
        d.add(Slapd.person("newhire", ["newhire@example.test"]))
        store = mx.tmp / "store"
        dump = subprocess.run(["mdb_dump", "-p", str(store)], capture_output=True, text=True, check=True).stdout
        # the stamp one day ahead: as many digits, so the value keeps its length
        dump2, n = re.subn(r"( \d{10})( \d+\n)", lambda m: f" {int(m.group(1)) + 86400}{m.group(2)}", dump)
        assert n == 1, dump[-500:]
        (store / "data.mdb").unlink()
        (store / "lock.mdb").unlink(missing_ok=True)
        subprocess.run(["mdb_load", str(store)], input=dump2, text=True, check=True)
        mx.start()
        mx.wait_log(r"ldap replica .*: synced 4 addresses")
        assert rcpt_codes(mx.port, "newhire@example.test") == [250]
    finally:
        d.stop()
        d.cleanup()
