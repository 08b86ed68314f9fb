"""Attacks on the embedded ClickHouse endpoint by class: each test sends one class of attack in
several spellings, as the reader and as the writer where both apply, and fails if any succeeds.

The classes are those an outside battery found open (issue 24): data evaluated as code, files
written by statements other than SELECT, settings that name files or hold SQL, setting values
pasted into SQL, writes over GET, and resources. What the second wall (the confined process) stops
on its own is shown in test_endpoint_confinement.py.
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

from tests.helpers.endpoint import ClickHouseEndpoint, make_dozor_database

pytestmark = pytest.mark.integration

WRITER = ("default", "w-secret-1")
READER = ("dozor_reader", "r-secret-2")
ROLES = pytest.mark.parametrize("user", [WRITER, READER], ids=["writer", "reader"])
SECRET = "the-host-secret-93af"


class Listener:
    """A TCP port that records every connection: an attack that makes the engine reach the
    network is caught here even when its answer looks like an error."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """Host state an attacker goes after: a secret file, a directory to drop files into, a port."""
    d = tmp_path_factory.mktemp("host")
    (d / "secret.txt").write_text(SECRET + "\n")
    return d


@pytest.fixture(scope="module")
def listener():
    return Listener()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    ch = ClickHouseEndpoint(
        tmp_path_factory.mktemp("attacked-ch"),
        env={
            "DOZOR_CLICKHOUSE_PASSWORD": WRITER[1],
            "DOZOR_CLICKHOUSE_READER_PASSWORD": READER[1],
            "DOZOR_PLATE_SALT": SECRET + "-salt",
        },
    )
    ch.start()
    yield ch
    ch.stop()


def _client(endpoint, user=WRITER, **kw):
    kw.setdefault("autogenerate_session_id", False)
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=endpoint.port, username=user[0], password=user[1], **kw
    )


@pytest.fixture(scope="module")
def db(endpoint) -> str:
    name = f"atk_{uuid.uuid4().hex[:8]}"
    w = _client(endpoint)
    w.command(f"CREATE DATABASE {name}")
    w.command(f"CREATE TABLE {name}.t (id UInt32, s String) ENGINE = MergeTree ORDER BY id")
    w.command(f"CREATE TABLE {name}.audit_log (user String, action String) ENGINE = MergeTree ORDER BY user")
    w.command(f"INSERT INTO {name}.t VALUES (1, 'one'), (2, 'two')")
    # Dozor's databases are those `dozor migrate` made (they hold schema_migrations): this one, and
    # the engine's default, where the attacks sent without a database run.
    for where in (name, ""):
        make_dozor_database(w, where)
    return name


def _basic(user) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()}


def _request(endpoint, body: bytes | None, user, query: str = "", method: str = "POST", headers=None):
    req = urllib.request.Request(
        f"{endpoint.url}/{query}", data=body, headers={**_basic(user), **(headers or {})}, method=method
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _post(endpoint, sql: str, user, query: str = ""):
    return _request(endpoint, sql.encode(), user, query)


def _refused(endpoint, sql, user, query="", host=None, listener=None):
    """Send one attack; it must be refused, return no secret, write no file, open no connection."""
    before = listener.connections if listener else 0
    status, h, body = _post(endpoint, sql, user, query)
    assert status != 200, f"{sql!r} {query} ran as {user[0]}: {body[:300]!r}"
    assert SECRET.encode() not in body and WRITER[1].encode() not in body
    if host is not None:
        assert not any(p.name.startswith("out") for p in host.iterdir()), "a file was written"
    if listener is not None:
        assert listener.connections == before, f"{sql!r} made the engine connect out"
    return h, body


def _stored_anywhere(endpoint, db) -> int:
    """Rows of the test's tables that hold the secret (a host file stored as data)."""
    w = _client(endpoint)
    return sum(
        w.command(
            f"SELECT count() FROM {db}.{t} WHERE positionCaseInsensitive(toString(tuple(*)), '{SECRET}') > 0"
        )
        for t in ("t", "audit_log")
    )


# --- 1. data is data ------------------------------------------------------------------------------


DATA_AS_CODE = [
    "SELECT * FROM format(Values, 's String', $$(file('{f}'))$$)",
    "SELECT * FROM format(Values, 's String', '(file(''{f}''))')",
    "SELECT * FROM format(Values, 's String', $$(url('http://127.0.0.1:{port}/x', 'LineAsString'))$$)",
    "SELECT * FROM format(CSV, 's String', 'x')",
    "SELECT * FROM view(SELECT * FROM format(Values, 's String', $$(file('{f}'))$$))",
    "INSERT INTO {db}.audit_log (user, action) VALUES (file('{f}'), 'x')",
    "INSERT INTO {db}.audit_log (user, action) VALUES (concat('', file('{f}')), 'x')",
    "INSERT INTO {db}.t (id, s) VALUES (9, file('{f}'))",
    "INSERT INTO {db}.t (id, s) FORMAT Values (9, file('{f}'))",
    "INSERT INTO {db}.t (id, s) SELECT * FROM format(Values, 'id UInt32, s String', $$(9, file('{f}'))$$)",
    "CREATE VIEW {db}.v_leak AS SELECT * FROM format(Values, 's String', $$(file('{f}'))$$)",
]


@ROLES
@pytest.mark.parametrize("attack", DATA_AS_CODE)
def test_data_is_never_evaluated_as_code(endpoint, db, host, listener, user, attack):
    sql = attack.format(f=host / "secret.txt", db=db, port=listener.port)
    _refused(endpoint, sql, user, host=host, listener=listener)
    assert _stored_anywhere(endpoint, db) == 0


def test_values_take_literals_for_the_writer(endpoint, db):
    w = _client(endpoint)
    w.command(f"INSERT INTO {db}.t (id, s) VALUES (50, 'it''s'), (51, 'a\\\\b')")
    assert w.command(f"SELECT count() FROM {db}.t WHERE id IN (50, 51)") == 2


# --- 2. no statement writes a host file -------------------------------------------------------------


OUTFILES = [
    "SHOW TABLES FROM {db} INTO OUTFILE '{d}/out1'",
    "SHOW DATABASES INTO OUTFILE '{d}/out2'",
    "DESCRIBE TABLE {db}.t INTO OUTFILE '{d}/out3'",
    "EXISTS TABLE {db}.t INTO OUTFILE '{d}/out4'",
    "SHOW CREATE TABLE {db}.t INTO OUTFILE '{d}/out5'",
    "EXPLAIN SYNTAX SELECT '{secret}' INTO OUTFILE '{d}/out6'",
    "SELECT 1 UNION ALL SELECT 2 INTO OUTFILE '{d}/out7'",
    "WITH 1 AS x SELECT x INTO OUTFILE '{d}/out8' AND STDOUT",
    "SELECT * FROM {db}.t INTO OUTFILE '{d}/out9' TRUNCATE FORMAT CSV",
    "SELECT 1 INTO OUTFILE '{d}/out10.gz' COMPRESSION 'gzip'",
]


@ROLES
@pytest.mark.parametrize("attack", OUTFILES)
def test_no_statement_kind_writes_a_host_file(endpoint, db, host, user, attack):
    h, _ = _refused(endpoint, attack.format(db=db, d=host, secret=SECRET), user, host=host)
    assert h["X-ClickHouse-Exception-Code"] in {"497", "164", "62"}


# --- 3. settings that name files, hold SQL or reach out ---------------------------------------------


URL_SETTINGS = [
    ("SELECT 1 FORMAT Template", "?format_template_row={f}"),
    ("SELECT 1 FORMAT Template", "?format_template_resultset={f}"),
    ("SELECT 1 FORMAT Protobuf", "?output_format_schema={d}/out.proto"),
    ("SELECT 1 AS x FORMAT Protobuf", "?format_schema={f}:Msg"),
    ("SELECT 1 AS x FORMAT CapnProto", "?format_schema={f}:Msg"),
    ("SELECT 1 FORMAT Avro", "?output_format_avro_codec=null"),
    ("SELECT 1", "?default_format=Template&format_template_row={f}"),
    ("SELECT id FROM {db}.t", "?additional_result_filter=id%20%3D%201"),
    ("SELECT id FROM {db}.t", "?additional_table_filters=%7B%27t%27%3A%27id%3D1%27%7D"),
]
CLAUSE_SETTINGS = [
    "SELECT 1 FORMAT Template SETTINGS format_template_row = '{f}'",
    "SELECT 1 SETTINGS format_schema = '{f}'",
    "SELECT 1 SETTINGS output_format_schema = '{d}/out.proto'",
    "SELECT id FROM {db}.t SETTINGS additional_result_filter = 'id = 1'",
    "SELECT 1 SETTINGS input_format_values_interpret_expressions = 1",
    "CREATE TABLE {db}.on_disk (x UInt8) ENGINE = MergeTree ORDER BY x "
    "SETTINGS disk = disk(type = 'local', path = '{d}/outdisk/')",
    "CREATE TABLE {db}.on_web (x UInt8) ENGINE = MergeTree ORDER BY x "
    "SETTINGS disk = disk(type = 'web', endpoint = 'http://127.0.0.1:{port}/')",
    "ALTER TABLE {db}.t MODIFY SETTING storage_policy = 'default'",
    "INSERT INTO {db}.t SETTINGS input_format_values_interpret_expressions = 1 VALUES (7, 'x')",
]


@ROLES
@pytest.mark.parametrize(("sql", "query"), URL_SETTINGS)
def test_no_url_setting_reads_writes_or_rewrites(endpoint, db, host, listener, user, sql, query):
    q = query.format(f=host / "secret.txt", d=host)
    h, _ = _refused(endpoint, sql.format(db=db), user, q, host=host, listener=listener)
    assert h["X-ClickHouse-Exception-Code"] in {"164", "497", "115"}


@ROLES
@pytest.mark.parametrize("attack", CLAUSE_SETTINGS)
def test_no_settings_clause_reads_writes_or_rewrites(endpoint, db, host, listener, user, attack):
    _refused(endpoint, attack.format(f=host / "secret.txt", d=host, db=db, port=listener.port), user,
             host=host, listener=listener)  # fmt: skip
    assert not (host / "outdisk").exists()


# --- 4. a setting's value is data, never SQL, and leaves nothing behind -------------------------------


READER_INJECTIONS = [
    "?join_use_nulls=" + urllib.parse.quote("'1', max_execution_time = 0, max_memory_usage = 0"),
    "?join_use_nulls=" + urllib.parse.quote("1', max_execution_time = '0"),
    "?date_time_input_format=" + urllib.parse.quote("best_effort', max_threads = '64"),
    "?cast_string_to_dynamic_use_inference=" + urllib.parse.quote("0\\', additional_result_filter = 'id = 1"),
    "?join_use_nulls=" + urllib.parse.quote("1\n, max_execution_time = 0"),
]


def _limits(endpoint) -> set[tuple]:
    """The reader's limits as every handle sees them (enough requests to visit each)."""
    r = _client(endpoint, READER)
    sql = "SELECT getSetting('max_execution_time'), getSetting('max_memory_usage'), getSetting('max_threads')"
    return {tuple(float(v) for v in r.query(sql).result_rows[0]) for _ in range(16)}


@pytest.mark.parametrize("query", READER_INJECTIONS)
def test_a_readers_setting_value_cannot_change_its_limits_now_or_later(endpoint, db, query):
    for _ in range(6):
        sql = f"SELECT getSetting('max_execution_time'), count() FROM {db}.t"
        status, _, body = _post(endpoint, sql, READER, query)
        assert status != 200 or float(body.split(b"\t")[0]) == 30, body
    assert _limits(endpoint) == {(30, 2 * 1024**3, 2)}
    r = _client(endpoint, READER)
    assert {r.command(f"SELECT count() FROM {db}.t WHERE id IN (1, 2)") for _ in range(16)} == {2}


def test_a_writers_setting_value_is_one_value(endpoint, db):
    token = "x', max_partitions_per_insert_block = '1"
    w = _client(endpoint)
    w.insert(f"{db}.t", [[60, "v"]], column_names=["id", "s"], settings={"insert_deduplication_token": token})
    assert w.command(f"SELECT count() FROM {db}.t WHERE id = 60") == 1
    assert {w.command("SELECT getSetting('max_partitions_per_insert_block')") for _ in range(16)} == {100}


@ROLES
def test_a_session_cannot_set_what_a_request_cannot(endpoint, user):
    s = _client(endpoint, user, autogenerate_session_id=True)
    refused = [
        "SET readonly = 0",
        "SET input_format_values_interpret_expressions = 1",
        "SET format_template_row = '/etc/hostname'",
        "SET additional_result_filter = 'id = 1'",
        "SET join_use_nulls = (SELECT 1)",
        "SET os_thread_priority = -20",
    ]
    if user == READER:
        refused += ["SET max_execution_time = 0", "SET max_memory_usage = 0", "SET max_threads = 64"]
    for stmt in refused:
        with pytest.raises(Exception, match="code: (164|115|62)"):
            s.command(stmt)
    assert float(s.command("SELECT getSetting('max_execution_time')")) == (30 if user == READER else 0)


# --- 5. a GET reads, for every user -----------------------------------------------------------------


GET_WRITES = [
    "INSERT INTO {db}.audit_log (user, action) VALUES ('get', 'x')",
    'INSERT INTO {db}.audit_log (user, action) FORMAT JSONEachRow {{"user":"get","action":"x"}}',
    "INSERT INTO {db}.t (id, s) SELECT 70, 'get'",
    "CREATE TABLE {db}.by_get (x UInt8) ENGINE = Memory",
    "ALTER TABLE {db}.t DELETE WHERE id = 1",
    "TRUNCATE TABLE {db}.audit_log",
]


@ROLES
@pytest.mark.parametrize("attack", GET_WRITES)
def test_a_get_never_writes(endpoint, db, user, attack):
    w = _client(endpoint)
    before = (w.command(f"SELECT count() FROM {db}.t"), w.command(f"SELECT count() FROM {db}.audit_log"))
    q = "?query=" + urllib.parse.quote(attack.format(db=db))
    status, h, body = _request(endpoint, None, user, q, method="GET")
    assert status != 200 and h["X-ClickHouse-Exception-Code"] == "164", body
    assert (
        w.command(f"SELECT count() FROM {db}.t"),
        w.command(f"SELECT count() FROM {db}.audit_log"),
    ) == before
    assert w.command(f"EXISTS TABLE {db}.by_get") == 0


# --- 6. resources -----------------------------------------------------------------------------------


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _stream(endpoint, user, head: str, body_chunks, extra_headers: str = "") -> bytes:
    """A chunked POST sent piece by piece; returns the status line (the endpoint may answer and
    close before the body is over)."""
    auth = _basic(user)["Authorization"]
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=60) as s:
        s.sendall(
            f"POST /{head} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n"
            f"{extra_headers}\r\n".encode()
        )
        try:
            for chunk in body_chunks:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return s.recv(200).split(b"\r\n")[0]


@ROLES
def test_a_huge_statement_is_refused_while_it_is_read(endpoint, user):
    pid = endpoint.proc.pid
    before = _rss_mib(pid)
    mib = b"x" * (1 << 20)
    # 200 MB of a SELECT's string literal, chunked; then the same announced by Content-Length.
    status = _stream(endpoint, user, "", ([b"SELECT '"] + [mib] * 200 + [b"'"]))
    assert status.startswith(b"HTTP/1.1 413"), status
    auth = _basic(user)["Authorization"]
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=60) as s:
        head = f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: {200 << 20}\r\n\r\n"
        s.sendall(head.encode())
        try:
            s.sendall(b"SELECT '" + mib * 20)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered before the body was sent: the point
        assert s.recv(200).startswith(b"HTTP/1.1 413")
    # A gzip body of 200 KB that unpacks to 200 MB.
    bomb = gzip.compress(b"SELECT '" + b"x" * (200 << 20) + b"'", compresslevel=9)
    status, _, _ = _request(endpoint, bomb, user, headers={"Content-Encoding": "gzip"})
    assert status == 413
    grown = _rss_mib(pid) - before
    assert grown < 150, f"the endpoint grew {grown:.0f} MiB on refused bodies"
    assert _post(endpoint, "SELECT 1", user)[0] == 200


def test_the_readers_body_is_a_statements_size_whatever_it_claims_to_insert(endpoint, db):
    mib = b"\x00" * (1 << 20)
    head = f"INSERT INTO {db}.audit_log (user, action) FORMAT Native\n".encode()
    status = _stream(endpoint, READER, "", [head] + [mib] * 40)
    assert status.startswith(b"HTTP/1.1 413"), status


@ROLES
@pytest.mark.parametrize(
    "attack",
    [
        "CREATE TABLE {db}.dl AS deltaLakeLocal('{d}')",
        "CREATE TABLE {db}.ic AS icebergLocal('{d}')",
        "CREATE TABLE {db}.pm AS paimonLocal('{d}')",
        "CREATE TABLE {db}.hu ENGINE = Memory AS SELECT * FROM hudi('http://127.0.0.1:{port}/')",
        "SELECT * FROM {db}.t WHERE id IN (SELECT * FROM icebergLocal('{d}'))",
        "INSERT INTO {db}.t SELECT * FROM deltaLakeLocal('{d}')",
        "SELECT * FROM {db}.t WHERE id IN deltaLakeLocal('{d}')",
    ],
)
def test_table_functions_that_read_paths_are_refused_in_any_place(endpoint, db, host, listener, user, attack):
    h, _ = _refused(endpoint, attack.format(db=db, d=host, port=listener.port), user, listener=listener)
    assert h["X-ClickHouse-Exception-Code"] in {"497", "164"}


@pytest.fixture(scope="module")
def small_endpoint(tmp_path_factory):
    """Two reader handles and a queue of two: what a crowd of slow dashboard queries meets."""
    ch = ClickHouseEndpoint(
        tmp_path_factory.mktemp("small-ch"),
        env={"DOZOR_CLICKHOUSE_PASSWORD": WRITER[1], "DOZOR_CLICKHOUSE_READER_PASSWORD": READER[1],
             "DOZOR_CHDB_HANDLES": "2", "DOZOR_CHDB_READER_QUEUE": "2"},
    )  # fmt: skip
    ch.start()
    make_dozor_database(_client(ch))
    yield ch
    ch.stop()


def test_slow_readers_past_the_queue_are_told_to_retry_and_the_writer_goes_on(small_endpoint):
    ep = small_endpoint
    w = _client(ep)
    w.command("CREATE TABLE IF NOT EXISTS q (id UInt32) ENGINE = MergeTree ORDER BY id")
    slow = "SELECT count() FROM numbers(400000000) WHERE sipHash64(number) % 7 = 1"
    answers: list[tuple[int, dict]] = []

    def read() -> None:
        status, h, _ = _post(ep, slow, READER)
        answers.append((status, h))

    readers = [threading.Thread(target=read) for _ in range(16)]
    for t in readers:
        t.start()
    # The queue is full (2 running, 2 waiting) long before the slow ones end: 503s arrive at once.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum(1 for s, _ in answers if s == 503) < 12:
        time.sleep(0.05)
    busy = [h for s, h in answers if s == 503]
    assert len(busy) >= 12 and all(h.get("Retry-After") for h in busy), answers
    # Meanwhile the writer inserts on its own handles.
    t0 = time.monotonic()
    for i in range(20):
        w.insert("q", [[i]], column_names=["id"])
    writes_s = time.monotonic() - t0
    running = [t for t in readers if t.is_alive()]
    assert running, "the slow readers ended before the writer was measured"
    assert w.command("SELECT count() FROM q") == 20 and writes_s < 10, writes_s
    for t in readers:
        t.join(120)


# --- 7. names that are files ----------------------------------------------------------------------
# clickhouse-local's `default` database opens a name it does not hold as a host file. The planted
# file sits in the engine's own data directory, which the confined process may read: only the
# policy stands between a statement and it (test_endpoint_confinement shows the rest of the disk).


@pytest.fixture(scope="module")
def planted(endpoint) -> Path:
    path = endpoint.state / "clickhouse" / "planted.csv"
    path.write_text(f"{SECRET},1\n")
    return path


FILE_NAMES = [
    "SELECT * FROM default.`{p}`",
    "SELECT * FROM `default`.`{p}`",
    'SELECT * FROM "default"."{p}"',
    "SELECT * FROM `{p}`",
    "SELECT * FROM `default.{p}`",
    "SELECT * FROM default.`{d}/plant*`",
    "SELECT * FROM default.`../planted.csv`",
    "SELECT * FROM `../planted.csv`",
    "SELECT '{secret}' IN default.`{p}`",
    "SELECT c1 FROM {db}.t AS t, default.`{p}` AS f",
    "SELECT * FROM default.`{p}` AS x JOIN system.one ON 1",
    "WITH (SELECT any(c1) FROM default.`{p}`) AS s SELECT s",
    "SELECT * FROM {db}.t WHERE s IN (SELECT c1 FROM default.`{p}`)",
    "DESCRIBE TABLE default.`{p}`",
    "EXISTS TABLE default.`{p}`",
    "SELECT hasColumnInTable('default', '{p}', 'c1')",
    "SHOW TABLES FROM default",
    "INSERT INTO {db}.t SELECT 1, c1 FROM default.`{p}`",
    "CREATE VIEW {db}.v_file AS SELECT * FROM default.`{p}`",
    "CREATE TABLE {db}.t_file ENGINE = Memory AS SELECT * FROM default.`{p}`",
    "INSERT INTO default.`{d}/out.csv` SELECT 1",
]


@ROLES
@pytest.mark.parametrize("attack", FILE_NAMES)
def test_no_name_opens_a_host_file(endpoint, db, planted, user, attack):
    sql = attack.format(p=planted, d=planted.parent, db=db, secret=SECRET)
    _refused(endpoint, sql, user)
    assert _stored_anywhere(endpoint, db) == 0
    assert not (planted.parent / "out.csv").exists()


@ROLES
def test_no_bound_parameter_or_session_opens_a_host_file(endpoint, planted, user):
    params = urllib.parse.urlencode({"param_d": "default", "param_t": str(planted)})
    _refused(endpoint, "SELECT * FROM {d:Identifier}.{t:Identifier}", user, f"?{params}")
    _refused(endpoint, "SELECT 1 IN {d:Identifier}.{t:Identifier}", user, f"?{params}")
    s = _client(endpoint, user, autogenerate_session_id=True)
    s.command("USE default")
    with pytest.raises(Exception) as e:
        s.query(f"SELECT * FROM `{planted}`")
    assert SECRET not in str(e.value)


def test_unqualified_tables_still_live_in_the_default_database_for_a_writer(endpoint):
    w = _client(endpoint)
    w.command("CREATE TABLE IF NOT EXISTS plain (id UInt32) ENGINE = MergeTree ORDER BY id")
    w.insert("plain", [[7]], column_names=["id"])
    assert w.command("SELECT sum(id) FROM plain") >= 7
    w.command("DROP TABLE plain")


# --- 8. system tables by any name, engines that name another table -----------------------------


SYSTEM_BY_NAME = [
    "SELECT 'x' IN system.keywords",
    "SELECT 'default' IN system.users",
    "SELECT 1 NOT IN system.processes",
    "SELECT in(1, system.query_log)",
    "SELECT 1 IN `system`.`users`",
    "SELECT * FROM {db}.t WHERE s IN system.users",
    "SELECT * FROM `system.users`",
]


@ROLES
@pytest.mark.parametrize("attack", SYSTEM_BY_NAME)
def test_no_refused_system_table_is_read_by_another_name(endpoint, db, user, attack):
    h, _ = _refused(endpoint, attack.format(db=db), user)


@ROLES
def test_no_refused_system_table_is_read_through_a_bound_name(endpoint, user):
    params = urllib.parse.urlencode({"param_d": "system", "param_t": "users"})
    h, _ = _refused(endpoint, "SELECT 1 IN {d:Identifier}.{t:Identifier}", user, f"?{params}")
    assert h["X-ClickHouse-Exception-Code"] == "497"


ENGINES_THAT_NAME_TABLES = [
    "CREATE TABLE {db}.buf (name String) ENGINE = Buffer(system, users, 1, 10, 100, 10000, 1000000, "
    "10000000, 100000000)",
    "CREATE TABLE {db}.buf2 (name String) ENGINE = Buffer(default, `{p}`, 1, 10, 100, 10000, 1000000, "
    "10000000, 100000000)",
    "CREATE TABLE {db}.mrg (name String) ENGINE = Merge(system, '^us')",
    "CREATE TABLE {db}.dst (name String) ENGINE = Distributed(default, system, users)",
    "CREATE TABLE {db}.cp AS system.users",
    "CREATE MATERIALIZED VIEW {db}.mv TO system.one AS SELECT 1 AS dummy",
]


@pytest.mark.parametrize("attack", ENGINES_THAT_NAME_TABLES)
def test_no_table_the_writer_makes_reads_another_for_the_reader(endpoint, db, planted, attack):
    _refused(endpoint, attack.format(db=db, p=planted), WRITER)
    for name in ("buf", "buf2", "mrg", "dst", "cp", "mv"):
        assert _client(endpoint).command(f"EXISTS TABLE {db}.{name}") == 0


# --- 9. no request leaves a handle broken, no result outgrows its bound ----------------------------


BREAKING_SETTINGS = [
    {"max_query_size": "30"},
    {"max_parser_depth": "2"},
    {"max_parser_backtracks": "1"},
    {"dialect": "prql"},
    {"dialect": "kusto"},
    {"max_ast_elements": "1"},
]


@pytest.mark.parametrize("setting", BREAKING_SETTINGS, ids=lambda s: next(iter(s)))
def test_no_setting_leaves_a_handle_unable_to_serve_the_next_request(endpoint, db, setting):
    query = "?" + urllib.parse.urlencode(setting)
    for _ in range(8):  # more requests than handles: every handle of the pool gets one
        _post(endpoint, "SELECT 1", WRITER, query)
        _post(endpoint, "SELECT 1", WRITER, query + "&session_id=" + uuid.uuid4().hex)
    for user in (WRITER, READER):
        for _ in range(8):
            status, _, body = _post(endpoint, f"SELECT count() FROM {db}.t", user)
            assert status == 200, body[:300]


def test_a_readers_result_is_bounded_like_its_memory(endpoint):
    t0 = time.monotonic()
    h, body = _refused(endpoint, "SELECT repeat('x', 1000000) FROM numbers(400)", READER)
    assert h["X-ClickHouse-Exception-Code"] == "396", body[:300]
    assert time.monotonic() - t0 < 30
    assert _post(endpoint, "SELECT 1", READER)[0] == 200


# --- 10. the protocol -----------------------------------------------------------------------------


def _raw(endpoint, payload: bytes, timeout: float = 20) -> bytes:
    with socket.create_connection(("127.0.0.1", endpoint.port), timeout=timeout) as s:
        s.sendall(payload)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out:
                break
        return out


@pytest.mark.parametrize("size", [b"-1", b"-0x10", b"+5", b"0x5", b"1" * 40])
def test_a_chunk_size_that_is_not_a_hex_number_is_refused(endpoint, size):
    auth = _basic(WRITER)["Authorization"]
    out = _raw(
        endpoint,
        b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nSELECT 1\r\n0\r\n\r\n",
    )
    assert out.startswith(b"HTTP/1.1 400"), out[:200]
    assert _post(endpoint, "SELECT 1", WRITER)[0] == 200


def test_a_query_id_cannot_write_headers(endpoint):
    status, headers, _ = _post(endpoint, "SELECT 1", READER, "?query_id=a%0d%0aX-Evil:%201%0d%0a")
    assert status == 200 and "X-Evil" not in headers
    assert "\n" not in headers["X-ClickHouse-Query-Id"] and "\r" not in headers["X-ClickHouse-Query-Id"]
    status, headers, _ = _post(endpoint, "SELECT 1", READER, "?query_id=batch-7.run:3")
    assert headers["X-ClickHouse-Query-Id"] == "batch-7.run:3"


def test_a_form_of_a_quarter_million_parts_is_refused_at_once(endpoint):
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n\r\n' * 250_000).encode()
    body += f"--{boundary}--\r\n".encode()
    t0 = time.monotonic()
    status, _, _ = _request(
        endpoint, body, READER, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 400 and time.monotonic() - t0 < 5


def test_a_form_that_is_not_utf8_gets_a_clear_error(endpoint):
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="query"\r\n\r\n'.encode()
        + b"SELECT '\xff\xfe'\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    status, headers, text = _request(
        endpoint, body, READER, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status != 200 and headers["X-ClickHouse-Exception-Code"] == "36", text
    assert b"UnicodeDecodeError" not in text


def test_a_silent_connection_is_closed(tmp_path):
    ch = ClickHouseEndpoint(
        tmp_path,
        env={"DOZOR_CLICKHOUSE_PASSWORD": WRITER[1], "DOZOR_CLICKHOUSE_READER_PASSWORD": READER[1],
             "DOZOR_CHDB_SOCKET_TIMEOUT_S": "2"},
    )  # fmt: skip
    ch.start()
    try:
        with socket.create_connection(("127.0.0.1", ch.port), timeout=30) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # and then nothing
            t0 = time.monotonic()
            assert s.recv(100) == b""  # the endpoint closed it
            assert time.monotonic() - t0 < 15
    finally:
        ch.stop()


STREAMED_INSERT_HEADS = [
    "INSERT INTO {db}.t (id, s) /* SETTINGS max_threads = 1 */ FORMAT JSONEachRow",
    "INSERT INTO {db}.t (id, s) /* ) */ SETTINGS insert_deduplication_token = 'a ) SETTINGS b' "
    "FORMAT JSONEachRow",
    "INSERT INTO {db}.t (id, s) SETTINGS log_comment = 'FROM INFILE \\'/etc/passwd\\'' FORMAT JSONEachRow",
]


@pytest.mark.parametrize("n", range(len(STREAMED_INSERT_HEADS)))
def test_a_streamed_insert_runs_as_checked_whatever_its_comments_and_strings(endpoint, db, n):
    row_id = 1000 + n
    head = STREAMED_INSERT_HEADS[n].format(db=db)
    status, _, body = _post(endpoint, f'{head}\n{{"id": {row_id}, "s": "c"}}\n', WRITER)
    assert status == 200, body[:300]
    assert _client(endpoint).command(f"SELECT count() FROM {db}.t WHERE id = {row_id}") == 1


# --- 11. the reader reads Dozor's databases only ---------------------------------------------------
# On a server the reader's grant is SELECT ON dozor.*; here every database shares one engine. A
# database the writer made for something else (no schema_migrations) is out of the reader's reach
# by any name, and so are listings of what is not Dozor's (SHOW CLUSTERS reads system.clusters).


@pytest.fixture(scope="module")
def foreign(endpoint) -> str:
    name = f"other_{uuid.uuid4().hex[:8]}"
    w = _client(endpoint)
    w.command(f"CREATE DATABASE {name}")
    w.command(f"CREATE TABLE {name}.secret (s String) ENGINE = MergeTree ORDER BY s")
    w.command(f"CREATE TABLE {name}.audit_log (user String, action String) ENGINE = MergeTree ORDER BY user")
    w.command(f"INSERT INTO {name}.secret VALUES ('{SECRET}')")
    return name


FOREIGN_READS = [
    ("SELECT * FROM {o}.secret", ""),
    ("SELECT * FROM `{o}`.`secret`", ""),
    ("SELECT * FROM {db}.t AS a JOIN {o}.secret AS b ON 1 = 1", ""),
    ("SELECT '{secret}' IN {o}.secret", ""),
    ("SELECT * FROM {db}.t WHERE s IN (SELECT s FROM {o}.secret)", ""),
    ("WITH x AS (SELECT * FROM {o}.secret) SELECT * FROM x", ""),
    ("SELECT * FROM view(SELECT * FROM {o}.secret)", ""),
    ("SELECT * FROM secret", "?database={o}"),
    ("SELECT * FROM {{d:Identifier}}.{{t:Identifier}}", "?param_d={o}&param_t=secret"),
    ("DESCRIBE TABLE {o}.secret", ""),
    ("EXISTS TABLE {o}.secret", ""),
    ("SHOW CREATE TABLE {o}.secret", ""),
    ("SHOW TABLES FROM {o}", ""),
    ("SHOW TABLES FROM system", ""),
    ("SHOW CLUSTERS", ""),
    ("SHOW DICTIONARIES", ""),
    ("SHOW DATABASES", ""),
    ("SHOW FILESYSTEM CACHES", ""),
    ("EXPLAIN SELECT 1", ""),
    ("EXPLAIN PLAN actions = 1 SELECT * FROM {db}.t", ""),
    ("SELECT x.s FROM {o}.secret AS x", ""),
    ("SELECT count() FROM (SELECT * FROM {db}.t UNION ALL SELECT 1, s FROM {o}.secret)", ""),
]


@pytest.mark.parametrize(("attack", "query"), FOREIGN_READS)
def test_the_reader_reads_no_database_but_dozors(endpoint, db, foreign, attack, query):
    sql = attack.format(o=foreign, db=db, secret=SECRET)
    _refused(endpoint, sql, READER, query.format(o=foreign))


def test_the_reader_appends_to_dozors_audit_log_only(endpoint, db, foreign):
    for target, database in ((f"{foreign}.audit_log", db), ("audit_log", foreign)):
        body = f'INSERT INTO {target} (user, action) FORMAT JSONEachRow\n{{"user": "r", "action": "x"}}\n'
        status, _, text = _post(endpoint, body, READER, f"?database={database}")
        assert status != 200, text[:300]
    assert _client(endpoint).command(f"SELECT count() FROM {foreign}.audit_log") == 0
    # Its own database's audit log, and reads of its own tables and of aliases' columns, still work.
    body = f'INSERT INTO {db}.audit_log (user, action) FORMAT JSONEachRow\n{{"user": "r", "action": "ok"}}\n'
    status, _, text = _post(endpoint, body, READER, f"?database={db}")
    assert status == 200, text[:300]
    status, _, text = _post(
        endpoint, f"SELECT a.s FROM {db}.t AS a WHERE a.id <= 2 ORDER BY a.id FORMAT TSV", READER
    )
    assert (status, text) == (200, b"one\ntwo\n")


def test_a_database_the_writer_makes_a_moment_before_is_out_of_reach_at_once(endpoint, db):
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    w = _client(endpoint)
    w.command(f"CREATE DATABASE {name}")
    w.command(f"CREATE TABLE {name}.x (s String) ENGINE = MergeTree ORDER BY s")
    _refused(endpoint, f"SELECT * FROM {name}.x", READER)
    # Once migrated (it holds schema_migrations), it is Dozor's: the reader reads it.
    w.command(f"CREATE TABLE {name}.schema_migrations (v String) ENGINE = MergeTree ORDER BY v")
    status, _, text = _post(endpoint, f"SELECT count() FROM {name}.x", READER)
    assert status == 200, text[:300]
