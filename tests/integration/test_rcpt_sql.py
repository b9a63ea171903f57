# Recipient verification against a real PostgreSQL and a real MariaDB:
# mailboxes, aliases, catch-all, parameterised queries that addresses full of
# quotes cannot change, wrong credentials and a server going away (451, never
# 550), recovery. One server of each for the module.
import time

import pytest

from conftest import Client, rcpt_codes, wait_for
from peers import Mariadb, Postgres

MAILBOXES = ["alice@example.test", "bob@example.test", "@catchall.test",
             "o'brien@example.test"]
ALIASES = ["postmaster@example.test", "a.smith@example.test"]
DOMAINS = ("example.test", "catchall.test")
INJECTIONS = ["x'OR'1'='1@example.test", "\"' OR '1'='1\"@example.test",
              "\"a'; DROP TABLE mailbox; --\"@example.test",
              "_@example.test"]


def sql_quote(s):
    return "'" + s.replace("'", "''") + "'"


@pytest.fixture(scope="module")
def pg():
    p = Postgres()
    with open(p.data / "postgresql.conf", "a") as f:
        f.write("log_statement = 'all'\n")
    p.start()
    p.sql(f"CREATE ROLE {p.USER} LOGIN PASSWORD {sql_quote(p.PASSWORD)};\n"
          f"CREATE DATABASE {p.DB} OWNER {p.USER};\n")
    rows = ",".join(f"({sql_quote(m)})" for m in MAILBOXES)
    arows = ",".join(f"({sql_quote(a)})" for a in ALIASES)
    p.sql(f"""CREATE TABLE mailbox (address text PRIMARY KEY);
CREATE TABLE alias (address text PRIMARY KEY);
INSERT INTO mailbox VALUES {rows};
INSERT INTO alias VALUES {arows};
GRANT SELECT ON mailbox, alias TO {p.USER};
""", db=p.DB)
    yield p
    p.cleanup()


@pytest.fixture(scope="module")
def mariadb():
    m = Mariadb().start()
    rows = ",".join(f"({sql_quote(x)})" for x in MAILBOXES)
    arows = ",".join(f"({sql_quote(a)})" for a in ALIASES)
    m.sql(f"""CREATE DATABASE {m.DB};
CREATE USER '{m.USER}'@'127.0.0.1' IDENTIFIED BY {sql_quote(m.PASSWORD)};
GRANT SELECT ON {m.DB}.* TO '{m.USER}'@'127.0.0.1';
USE {m.DB};
CREATE TABLE mailbox (address VARCHAR(320) PRIMARY KEY) CHARACTER SET utf8mb4;
CREATE TABLE alias (address VARCHAR(320) PRIMARY KEY) CHARACTER SET utf8mb4;
INSERT INTO mailbox VALUES {rows};
INSERT INTO alias VALUES {arows};
""")
    yield m
    m.cleanup()


PG_QUERY = ("SELECT 1 FROM mailbox WHERE address = $1 UNION ALL "
            "SELECT 1 FROM alias WHERE address = $1 AND $3 = 'example.test'")


def pg_conf(pg, query=PG_QUERY, conninfo=None, timeout="2s"):
    return (f'pgsql = {{ conninfo = "{conninfo or pg.conninfo}"; query = "{query}"; }}; '
            f'cache = {{ positive_ttl = 0; negative_ttl = 0; }}; timeout = "{timeout}";')


def check_lookups(mx, kind, mixed_case):
    """Mailboxes, aliases, extensions, catch-all, a quote and an unknown
    address, one by one; then many lookups at once from 20 pipelining
    sessions (pgsql: one pipelined connection; mysql: the pool)."""
    assert rcpt_codes(mx.port, "alice@example.test", mixed_case, "bob+tag@example.test",
                      "postmaster@example.test", "a.smith@example.test", "whoever@catchall.test",
                      "o'brien@example.test", "nobody@example.test") == \
        [250, 250, 250, 250, 250, 250, 250, 550]
    mx.wait_log(rf"{kind}: connected to 127\.0\.0\.1:\d+/mail")
    clients = []
    for i in range(20):
        c = Client(mx.port)
        c.ehlo()
        c.cmd("MAIL FROM:<s@remote.test>")
        c.send("".join(f"RCPT TO:<{a}>\r\n" for a in ("alice@example.test", f"no{i}@example.test",
                                                      "bob@example.test")))
        clients.append(c)
    for c in clients:
        assert [c.reply()[0] for _ in range(3)] == [250, 550, 250]
        c.close()


def test_pgsql_lookups(make_mx, sink, pg):
    mx = make_mx(sink.target, domains=DOMAINS, recipients_conf=pg_conf(pg))
    check_lookups(mx, "pgsql", "ALICE@example.test")


def test_pgsql_injection(make_mx, sink, pg):
    mx = make_mx(sink.target, domains=DOMAINS, recipients_conf=pg_conf(pg))
    before = len(open(pg.logfile, errors="replace").read())
    assert rcpt_codes(mx.port, *INJECTIONS) == [550] * len(INJECTIONS)
    assert pg.sql("SELECT count(*) FROM mailbox", db=pg.DB).strip() == str(len(MAILBOXES))
    log = open(pg.logfile, errors="replace").read()[before:]
    # the statement text never changes; the addresses travel as parameters
    stmts = {line.split("execute <unnamed>: ", 1)[1] for line in log.splitlines()
             if "execute <unnamed>: " in line}
    assert stmts == {PG_QUERY}, stmts
    # (keys are lowercased)
    assert "parameters: $1 = 'x''or''1''=''1@example.test', $2 = 'x''or''1''=''1', " \
           "$3 = 'example.test'" in log
    assert "$1 = '\"a''; drop table mailbox; --\"@example.test'" in log


def test_pgsql_credentials_and_outage(make_mx, sink, pg):
    bad = pg.conninfo.replace(pg.PASSWORD.replace("'", "\\'"), "not-the-password")
    assert bad != pg.conninfo
    mx = make_mx(sink.target, domains=DOMAINS, recipients_conf=pg_conf(pg, conninfo=bad))
    assert rcpt_codes(mx.port, "alice@example.test", "nobody@example.test") == [451, 451]
    mx.wait_log(r"pgsql 127\.0\.0\.1:\d+/mail: cannot connect .*password authentication failed")
    assert "not-the-password" not in mx.log()

    mx2 = make_mx(sink.target, domains=DOMAINS, recipients_conf=pg_conf(pg))
    assert rcpt_codes(mx2.port, "alice@example.test", "nobody@example.test") == [250, 550]
    pg.stop()
    try:
        assert rcpt_codes(mx2.port, "alice@example.test", "nobody@example.test") == [451, 451]
    finally:
        pg.start()
    wait_for(lambda: rcpt_codes(mx2.port, "alice@example.test", "nobody@example.test") == [250, 550],
             15, "pgsql lookups recover")
    assert pg.PASSWORD not in mx2.log()


def check_query_failures(make_mx, sink, conf, kind):
    """A query the server refuses and a query slower than recipients.timeout
    (1 s) are 451, never 550; the slow one is answered within the timeout."""
    broken, slow = conf("broken"), conf("slow")
    mx = make_mx(sink.target, domains=DOMAINS, recipients_conf=broken)
    assert rcpt_codes(mx.port, "alice@example.test", "nobody@example.test") == [451, 451]
    mx.wait_log(rf"{kind} 127\.0\.0\.1:\d+/mail: .*no_such_table")
    mx2 = make_mx(sink.target, domains=DOMAINS, recipients_conf=slow)
    c = Client(mx2.port)
    c.ehlo()
    assert c.cmd("MAIL FROM:<s@remote.test>")[0] == 250
    t = time.monotonic()
    assert c.cmd("RCPT TO:<alice@example.test>")[0] == 451
    assert 0.8 < time.monotonic() - t < 2.5
    c.close()
    mx2.wait_log(rf"{kind} 127\.0\.0\.1:\d+/mail: no answer within 1000 ms")


def test_pgsql_query_failures(make_mx, sink, pg):
    queries = {"broken": "SELECT 1 FROM no_such_table WHERE address = $1",
               "slow": "SELECT 1 FROM mailbox, pg_sleep(3) WHERE address = $1"}
    check_query_failures(make_mx, sink, lambda k: pg_conf(pg, query=queries[k], timeout="1s"),
                         "pgsql")


MY_QUERY = ("SELECT 1 FROM mailbox WHERE address = ? UNION ALL "
            "SELECT 1 FROM alias WHERE address = ?")


def my_conf(m, password=None, query=MY_QUERY, timeout="2s"):
    return (f'mysql = {{ host = "127.0.0.1"; port = {m.port}; user = "{m.USER}"; '
            f'password = "{password or m.PASSWORD}"; database = "{m.DB}"; query = "{query}"; '
            'connections = 3; }; cache = { positive_ttl = 0; negative_ttl = 0; }; '
            f'timeout = "{timeout}";')


def test_mysql_lookups(make_mx, sink, mariadb):
    mx = make_mx(sink.target, domains=DOMAINS, recipients_conf=my_conf(mariadb))
    check_lookups(mx, "mysql", "Bob@Example.Test")


def test_mysql_injection(make_mx, sink, mariadb):
    mx = make_mx(sink.target, domains=DOMAINS, recipients_conf=my_conf(mariadb))
    before = len(mariadb.queries())
    assert rcpt_codes(mx.port, *INJECTIONS) == [550] * len(INJECTIONS)
    assert mariadb.sql(f"SELECT count(*) FROM {mariadb.DB}.mailbox").strip() == \
        str(len(MAILBOXES))
    log = mariadb.queries()[before:]
    # prepared once per connection with placeholders; executed with the value
    assert f"Prepare\t{MY_QUERY}" in log
    assert "WHERE address = 'x\\'or\\'1\\'=\\'1@example.test'" in log


def test_mysql_credentials_and_outage(make_mx, sink, mariadb):
    mx = make_mx(sink.target, domains=DOMAINS,
                 recipients_conf=my_conf(mariadb, password="not-the-password"))
    assert rcpt_codes(mx.port, "alice@example.test", "nobody@example.test") == [451, 451]
    mx.wait_log(r"mysql 127\.0\.0\.1:\d+/mail: cannot connect .*Access denied")
    assert "not-the-password" not in mx.log()

    mx2 = make_mx(sink.target, domains=DOMAINS, recipients_conf=my_conf(mariadb))
    assert rcpt_codes(mx2.port, "alice@example.test", "nobody@example.test") == [250, 550]
    mariadb.stop()
    try:
        assert rcpt_codes(mx2.port, "alice@example.test", "nobody@example.test") == [451, 451]
    finally:
        mariadb.start()
    wait_for(lambda: rcpt_codes(mx2.port, "alice@example.test", "nobody@example.test") == [250, 550],
             15, "mysql lookups recover")
    time.sleep(0.1)
    assert mariadb.PASSWORD not in mx2.log()


def test_mysql_query_failures(make_mx, sink, mariadb):
    queries = {"broken": "SELECT 1 FROM no_such_table WHERE address = ?",
               "slow": "SELECT 1 FROM mailbox WHERE address = ? AND SLEEP(3) = 0"}
    check_query_failures(make_mx, sink,
                         lambda k: my_conf(mariadb, query=queries[k], timeout="1s"), "mysql")
