"""Attacks on the embedded ClickHouse endpoint: each test sends one and fails if it succeeds.

The endpoint here runs as in production: a writer and a reader, both with passwords. The secret
the attacks go after is a file on the host the endpoint runs on; none of them may return it.
"""

from __future__ import annotations

import base64
import gzip
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from dozor.infra.chdb_http import SHADOW_DATABASE
from tests.helpers.endpoint import ClickHouseEndpoint, make_dozor_database

pytestmark = pytest.mark.integration

WRITER = ("default", "w-secret-1")
READER = ("dozor_reader", "r-secret-2")


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("host") / "plate-salt.env"
    path.write_text("DOZOR_PLATE_SALT=the-secret-salt-7c1f\n")
    return path


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    ch = ClickHouseEndpoint(
        tmp_path_factory.mktemp("secured-ch"),
        env={
            "DOZOR_CLICKHOUSE_PASSWORD": WRITER[1],
            "DOZOR_CLICKHOUSE_READER_PASSWORD": READER[1],
            "DOZOR_CLICKHOUSE_MAX_BODY_MB": "2",
        },
    )
    ch.start()
    make_dozor_database(_client(ch))  # the reader's requests without a database run in the default
    yield ch
    ch.stop()


def _client(endpoint, user=WRITER, **kw):
    kw.setdefault("autogenerate_session_id", False)
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=endpoint.port, username=user[0], password=user[1], **kw
    )


@pytest.fixture(scope="module")
def db(endpoint) -> str:
    name = f"sec_{uuid.uuid4().hex[:8]}"
    w = _client(endpoint)
    w.command(f"CREATE DATABASE {name}")
    w.command(f"CREATE TABLE {name}.t (id UInt32, s String) ENGINE = MergeTree ORDER BY id")
    w.command(f"INSERT INTO {name}.t VALUES (1, 'one'), (2, 'two')")
    make_dozor_database(w, name)
    return name


def _post(endpoint, sql: str, headers: dict | None = None, query: str = "") -> tuple[int, dict, bytes]:
    return _post_bytes(endpoint, sql.encode(), headers or {}, query)


def _post_bytes(endpoint, body: bytes, headers: dict, query: str = "") -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"{endpoint.url}/{query}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _basic(user) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()}


# --- who gets in -----------------------------------------------------------------------------------


def test_a_client_without_credentials_is_refused(endpoint, secret_file):
    for headers in ({}, _basic(("default", "wrong")), _basic(("nobody", "x")), _basic((WRITER[0], ""))):
        status, h, body = _post(endpoint, "SELECT 1", headers)
        assert status == 401 and h["X-ClickHouse-Exception-Code"] == "516", (headers, body)
    q = urllib.parse.quote(f"SELECT * FROM file('{secret_file}', 'LineAsString')")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{endpoint.url}/?query={q}", timeout=10)
    assert e.value.code == 401 and b"the-secret-salt" not in e.value.read()


@pytest.mark.parametrize(
    "how",
    [
        lambda u: ({**_basic(u)}, ""),
        lambda u: ({"X-ClickHouse-User": u[0], "X-ClickHouse-Key": u[1]}, ""),
        lambda u: ({}, f"?user={u[0]}&password={u[1]}"),
    ],
    ids=["basic", "x-clickhouse-headers", "url-parameters"],
)
def test_each_way_a_server_reads_credentials_works(endpoint, how):
    headers, query = how(READER)
    status, _, body = _post(endpoint, "SELECT 40 + 2", headers, query)
    assert (status, body) == (200, b"42\n")


# --- no host or network access, for any user --------------------------------------------------------

HOST_ATTACKS = [
    "SELECT * FROM file('{f}', 'LineAsString')",
    "SELECT file('{f}')",
    "SELECT * FROM view(SELECT * FROM file('{f}', 'LineAsString'))",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString', 'x String')",
    "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'LineAsString')",
    "SELECT * FROM executable('cat {f}', 'LineAsString', 'x String')",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT * FROM mysql('127.0.0.1:3306', 'd', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:5432', 'd', 't', 'u', 'p')",
    "SELECT * FROM jdbc('jdbc:x', 'd', 't')",
    "SELECT * FROM merge('system', '.*')",
    "SELECT 1 INTO OUTFILE '{f}.out'",
    "SELECT 1; SELECT * FROM file('{f}', 'LineAsString')",
    "SELECT 1 -- \n; SELECT * FROM file('{f}', 'LineAsString')",
    "SELECT * FROM system.query_log",
    "SELECT * FROM system.users",
    "SELECT * FROM system.processes",
    "SYSTEM RELOAD CONFIG",
    "KILL QUERY WHERE 1",
]
WRITER_ATTACKS = [
    "INSERT INTO FUNCTION file('{f}.w', 'CSV', 'x String') SELECT 'x'",
    "INSERT INTO {db}.t (id, s) FROM INFILE '{f}' FORMAT LineAsString",
    "INSERT INTO {db}.t (s) SELECT * FROM file('{f}', 'LineAsString')",
    "CREATE TABLE {db}.leak (x String) ENGINE = File(LineAsString, '{f}')",
    "CREATE TABLE {db}.leak2 (x String) ENGINE = URL('http://127.0.0.1:9/', LineAsString)",
    "CREATE TABLE {db}.leak3 ENGINE = MergeTree ORDER BY tuple() "
    "AS SELECT * FROM file('{f}', 'LineAsString')",
    "CREATE DICTIONARY {db}.d (x String) PRIMARY KEY x SOURCE(FILE(path '{f}' format 'LineAsString')) "
    "LAYOUT(FLAT()) LIFETIME(0)",
    "CREATE DATABASE leakdb ENGINE = Filesystem('/')",
    "BACKUP TABLE {db}.t TO File('{f}.bak')",
    "ATTACH TABLE {db}.a FROM '/etc' (x String) ENGINE = MergeTree ORDER BY x",
    "INSERT INTO system.one VALUES (1)",
]


@pytest.mark.parametrize("user", [WRITER, READER], ids=["writer", "reader"])
@pytest.mark.parametrize("attack", HOST_ATTACKS + WRITER_ATTACKS)
def test_no_sql_reaches_the_host(endpoint, db, secret_file, user, attack):
    sql = attack.format(f=secret_file, db=db)
    status, h, body = _post(endpoint, sql, _basic(user))
    assert status != 200, f"{sql!r} ran as {user[0]}: {body[:200]!r}"
    assert b"the-secret-salt" not in body
    assert h.get("X-ClickHouse-Exception-Code") in {"497", "164", "62", "48"}, (sql, body)
    assert not Path(f"{secret_file}.out").exists() and not Path(f"{secret_file}.w").exists()


def test_a_second_statement_is_never_run(endpoint, db):
    status, h, body = _post(endpoint, f"SELECT 1; DROP TABLE {db}.t", _basic(WRITER))
    assert status == 500 and h["X-ClickHouse-Exception-Code"] == "62" and b"Multi-statements" in body
    assert _client(endpoint).command(f"EXISTS TABLE {db}.t") == 1


# --- the reader reads, and only reads ----------------------------------------------------------------


def test_the_reader_reads_dozors_tables(endpoint, db):
    r = _client(endpoint, READER)
    assert r.query(f"SELECT id, s FROM {db}.t ORDER BY id").result_rows == [(1, "one"), (2, "two")]
    assert r.query(
        "SELECT name FROM system.tables WHERE database = {d:String}", parameters={"d": db}
    ).result_rows


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO {db}.t VALUES (3, 'three')",
        "CREATE TABLE {db}.r (x UInt8) ENGINE = MergeTree ORDER BY x",
        "DROP TABLE {db}.t",
        "ALTER TABLE {db}.t DELETE WHERE 1",
        "TRUNCATE TABLE {db}.t",
        "OPTIMIZE TABLE {db}.t FINAL",
        "SELECT * FROM {db}.t SETTINGS max_execution_time = 100000",
    ],
)
def test_the_reader_cannot_write_or_raise_limits(endpoint, db, sql):
    status, h, body = _post(endpoint, sql.format(db=db), _basic(READER))
    assert status != 200 and h["X-ClickHouse-Exception-Code"] == "164", body
    assert _client(endpoint).command(f"SELECT count() FROM {db}.t") == 2


@pytest.mark.parametrize(
    "setting", ["max_execution_time=100000", "max_memory_usage=0", "readonly=0", "max_threads=64"]
)
def test_the_reader_cannot_set_limits_by_url(endpoint, setting):
    status, h, _ = _post(endpoint, "SELECT 1", _basic(READER), f"?{setting}")
    assert status != 200 and h["X-ClickHouse-Exception-Code"] == "164"


def test_the_reader_insert_through_the_driver_is_refused(endpoint, db):
    with pytest.raises(DatabaseError, match="164|readonly"):
        _client(endpoint, READER).insert(f"{db}.t", [[9, "nine"]], column_names=["id", "s"])
    assert _client(endpoint).command(f"SELECT count() FROM {db}.t") == 2


# --- isolation and sessions ---------------------------------------------------------------------------


def test_a_set_or_use_changes_nothing_outside_its_session(endpoint, db):
    w = _client(endpoint)
    for stmt in ("SET max_threads = 1", "SET json_type_escape_dots_in_keys = 1", "USE system"):
        for _ in range(12):  # enough to visit every handle of the pool
            w.command(stmt)
    for _ in range(12):
        assert w.command("SELECT getSetting('max_threads')") != 1
        assert w.command("SELECT currentDatabase()") == SHADOW_DATABASE
        assert w.command("SELECT getSetting('json_type_escape_dots_in_keys')") in (0, False, "0", "false")


def test_sessions_are_honoured_like_a_server(endpoint, db):
    s = _client(endpoint, autogenerate_session_id=True)
    s.command("SET max_threads = 1")
    s.command(f"USE {db}")
    assert s.command("SELECT getSetting('max_threads')") == 1
    assert s.command("SELECT count() FROM t") == 2
    other = _client(endpoint)
    assert other.command("SELECT getSetting('max_threads')") != 1
    with pytest.raises(DatabaseError, match="temporary tables are not supported"):
        s.command("CREATE TEMPORARY TABLE tmp (x UInt8)")


def test_session_check_for_an_unknown_session_is_an_error(endpoint):
    status, h, _ = _post(endpoint, "SELECT 1", _basic(WRITER), f"?session_id={uuid.uuid4()}&session_check=1")
    assert status != 200 and h["X-ClickHouse-Exception-Code"] == "372"


# --- limits ------------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_before_it_is_read(endpoint):
    # Headers announcing 3 MiB (the limit here is 2): the answer comes before any byte of the body.
    auth = _basic(WRITER)["Authorization"]
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as s:
        head = f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {3 << 20}\r\n\r\n"
        s.sendall(head.encode())
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    # A compressed body that unpacks past the limit is refused too.
    body = gzip.compress(b"SELECT '" + b"x" * (3 << 20) + b"'")
    status, _, _ = _post_bytes(endpoint, body, {**_basic(WRITER), "Content-Encoding": "gzip"})
    assert status == 413
    assert _post(endpoint, "SELECT 1", _basic(WRITER))[0] == 200  # and the endpoint serves on


def test_slow_reader_queries_do_not_starve_the_writer(endpoint, db):
    # Four dashboard queries that each take seconds, all at once; the worker's insert meanwhile
    # must go through on its own handles, before the slow queries are done.
    slow = "SELECT count() FROM numbers(300000000) WHERE sipHash64(number) % 7 = 1"
    done: list[float] = []

    def read() -> None:
        try:
            _client(endpoint, READER, send_receive_timeout=120).command(slow)
        except DatabaseError:
            pass  # the reader's own time limit may end it; either way it was slow
        done.append(time.monotonic())

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    time.sleep(0.5)  # let them start: this waits for the load, it asserts nothing
    w = _client(endpoint)
    w.insert(f"{db}.t", [[100, "during"]], column_names=["id", "s"])
    inserted = time.monotonic()
    assert w.command(f"SELECT count() FROM {db}.t WHERE id = 100") == 1
    for t in readers:
        t.join(200)
    assert len(done) == 4 and inserted < min(done), "the insert waited for the slow readers"


# --- fidelity with what clickhouse-connect sends ------------------------------------------------------


def test_digit_only_text_settings_are_taken_as_text(endpoint, db):
    w = _client(endpoint)
    w.insert(
        f"{db}.t", [[50, "a"]], column_names=["id", "s"], settings={"insert_deduplication_token": "5772"}
    )
    w.insert(f"{db}.t", [[51, "b"]], column_names=["id", "s"], settings={"log_comment": "123"})
    assert w.command(f"SELECT count() FROM {db}.t WHERE id IN (50, 51)") == 2


def test_bound_parameters_past_the_url_limit_arrive_as_a_form(endpoint, db):
    ids = list(range(1000))  # clickhouse-connect switches to a multipart body past ~4 KB
    r = _client(endpoint, READER).query(
        f"SELECT count() FROM {db}.t WHERE id IN {{ids:Array(UInt32)}}", parameters={"ids": ids}
    )
    truth = _client(endpoint).command(f"SELECT count() FROM {db}.t WHERE id < 1000")
    assert r.result_rows == [(truth,)]


def test_command_on_ddl_returns_a_summary_not_text(endpoint, db):
    summary = _client(endpoint).command(f"CREATE TABLE IF NOT EXISTS {db}.u (x UInt8) ENGINE = Memory")
    assert not isinstance(summary, str)


def test_the_reader_may_append_to_the_audit_log_and_nothing_more(endpoint, db):
    w = _client(endpoint)
    w.command(f"CREATE TABLE {db}.audit_log (user String, action String) ENGINE = MergeTree ORDER BY user")
    r = _client(endpoint, READER)
    r.insert(f"{db}.audit_log", [["u", "view"]], column_names=["user", "action"])
    assert w.command(f"SELECT count() FROM {db}.audit_log") == 1
    for sql in (
        f"INSERT INTO {db}.audit_log SELECT s, s FROM {db}.t",
        f"ALTER TABLE {db}.audit_log DELETE WHERE 1",
        f"TRUNCATE TABLE {db}.audit_log",
        f"DROP TABLE {db}.audit_log",
    ):
        status, h, body = _post(endpoint, sql, _basic(READER))
        assert status != 200 and h["X-ClickHouse-Exception-Code"] == "164", (sql, body)
    assert w.command(f"SELECT count() FROM {db}.audit_log") == 1
