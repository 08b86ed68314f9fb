"""A small ClickHouse HTTP endpoint in front of the embedded chdb engine.

Why it exists: chdb runs the real ClickHouse engine inside one process and locks its data directory,
so the worker, the dashboard and the CLI cannot each open it. This process owns the engine and speaks
the subset of the ClickHouse HTTP protocol that clickhouse-connect uses, so every other process talks
to it exactly as it would to a ClickHouse server, and production swaps in a real server by URL.

There is no library for this piece (chdb ships none); it is kept to the standard library plus the
codecs clickhouse-connect sends. What it speaks:

- ``GET /ping`` and ``GET /`` answer ``Ok.``.
- A query is the ``query`` URL parameter, the request body, or both (parameter first), exactly as
  ClickHouse concatenates them. The output format is the query's own ``FORMAT`` clause, else
  ``default_format``, else ``TabSeparated``.
- An ``INSERT … FORMAT <fmt>`` whose data follows the statement line (clickhouse-connect's chunked
  Native inserts) is spooled to tmpfs and run as ``INSERT … FROM INFILE``, an ordinary query that
  raises every engine error (chdb's streaming insert reported rows it never stored: see
  :meth:`ChdbEngine.insert`); ``INSERT … VALUES`` and ``INSERT … SELECT`` run as plain statements.
- ``database``, ClickHouse settings and ``param_<name>`` query parameters are URL parameters.
  Settings are written as quoted literals (never pasted) in one ``SET`` on the engine handle that
  serves the request, together with the fixed settings and the reader's limits, so nothing a
  request sets reaches another one (:mod:`dozor.infra.chdb_settings`).
- Request bodies may be compressed (``Content-Encoding`` lz4 frame, zstd, gzip, deflate); chunked
  transfer encoding is understood. Both are decoded piece by piece and counted as they arrive.
- Errors are HTTP 500 with the ClickHouse exception text and ``X-ClickHouse-Exception-Code``
  (401 for authentication, 413 for a body over the limit, 503 with ``Retry-After`` when the
  readers' queue is full).
- Replies carry ``X-ClickHouse-Query-Id``, ``X-ClickHouse-Format``, ``X-ClickHouse-Timezone`` and
  ``X-ClickHouse-Summary``.

How it runs (docs/clickhouse-endpoint.md lists every wall and what it stops): ``dozor clickhouse
serve`` hashes the passwords and replaces itself (:func:`launch`) with ``python -m
dozor.infra.chdb_http``, which reads its configuration from a pipe, binds its port, confines itself
(``infra/sandbox.py``) and only then opens the engine — with an environment that holds no secret.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.policy
import hashlib
import hmac
import logging
import os
import queue
import re
import secrets
import shutil
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson

from dozor.errors import ConfigError
from dozor.infra.chdb_policy import (
    MIGRATIONS_TABLE,
    READER,
    RESULT_STATEMENTS,
    WRITER,
    Denied,
    Statement,
    check,
    format_allowed,
    output_format,
    streamed,
)
from dozor.infra.chdb_settings import FORCED, READER_LIMITS, SettingRefused, SettingsPolicy, literal
from dozor.infra.chdb_sql import Unreadable, parse_ast, set_statement, tokens

__all__ = [
    "ChdbEngine",
    "ChdbHTTPServer",
    "EndpointConfig",
    "QueryError",
    "User",
    "HashedUser",
    "check_users",
    "launch",
    "main",
]

log = logging.getLogger("dozor.clickhouse")

# URL parameters that belong to the HTTP interface itself, never SET on the engine.
_HTTP_PARAMS = frozenset(
    {
        "query", "database", "default_format", "session_id", "session_timeout", "session_check",
        "query_id", "compress", "decompress", "user", "password", "quota_key", "buffer_size",
        "wait_end_of_query", "enable_http_compression", "http_zlib_compression_level",
        "send_progress_in_http_headers", "http_headers_progress_interval_ms", "role",
        "add_http_cors_header", "client_protocol_version",
        "http_native_compression_disable_checksumming_on_decompress",
        "cancel_http_readonly_queries_on_client_close",
    }
)  # fmt: skip

_INSERT_HEAD = re.compile(
    r"^\s*(?P<stmt>INSERT\s+INTO\s+.*?)\s+FORMAT\s+(?P<fmt>[A-Za-z0-9_]+)[ \t]*(?:\r?\n|$)",
    re.IGNORECASE | re.DOTALL,
)
_IS_INSERT = re.compile(r"^\s*INSERT\s+INTO\b", re.IGNORECASE)
_CODE = re.compile(r"Code:\s*(\d+)")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: ClickHouse's default max_query_size.
DEFAULT_MAX_QUERY_SIZE = 262_144

# A statement and its data arrive in one body; the statement line is never longer than this, so
# only this much is buffered before the data is streamed on to the engine.
_MAX_HEAD = 1 << 20

#: The largest body of a request that is not a streamed insert: a statement and, past ~4 KB of
#: bound parameters, clickhouse-connect's multipart form of them. 16 MiB holds a million bound
#: ids; a server would refuse a statement past max_query_size (256 KiB) anyway. Such a body is
#: read whole, so this bound — not the insert limit — is what keeps one request from taking the
#: endpoint's memory (a 200 MB statement once took 4.4 GiB on its way to the parser).
MAX_STATEMENT_BYTES = 16 << 20

#: Decompressed data is handed on in pieces of at most this size, whatever one compressed chunk
#: unpacks to.
_PIECE = 1 << 20

#: How long a reader request waits for an engine handle before it is answered 503: a wall screen
#: refreshes every few seconds and clickhouse-connect retries a 503 itself.
READER_WAIT_SECONDS = 15.0

#: Where a request whose database is the engine's ``default`` runs. clickhouse-local's default
#: database is an Overlay of an Atomic database and the file system: an unqualified name it does
#: not hold is opened as a host file (``SELECT * FROM `/etc/passwd```). This one is plain Atomic,
#: so an unqualified name is a table or nothing; a name qualified with ``default`` is refused by
#: the policy (``chdb_policy.rule_file_databases``).
SHADOW_DATABASE = "endpoint_default"

#: The most parts a multipart form may have: clickhouse-connect sends the query and its bound
#: parameters, one part each. Parsing 250,000 empty parts took the email parser 80 s of CPU.
MAX_FORM_PARTS = 1024

#: The largest result a reader gets, counted as the engine writes it (``chdb_policy.streamed``):
#: the dashboards' largest is a few MB; a 3 GB one took the endpoint's memory with it.
READER_MAX_RESULT_BYTES = 256 * 1024 * 1024

_SELECTS = frozenset({"SelectWithUnionQuery", "SelectIntersectExceptQuery"})

#: What a client's query_id may hold before it is echoed in a header: no CR/LF, nothing else.
_QUERY_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


class QueryError(Exception):
    """A failure to answer as ClickHouse would: ``code`` goes into X-ClickHouse-Exception-Code."""

    def __init__(
        self, message: str, code: int = 1001, status: int = 500, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.headers = headers or {}


def _error_from(exc: BaseException) -> QueryError:
    text = str(exc).removeprefix("Streaming query failed: ")
    m = _CODE.search(text)
    return QueryError(text, int(m.group(1)) if m else 1001)


@dataclass
class _Handle:
    """One chdb connection, used by one request at a time. ``changed`` holds the names a request
    set on it, reset to DEFAULT by the next one; ``dsn`` reopens it."""

    conn: object
    dsn: str
    database: str = "default"
    changed: set[str] = field(default_factory=set)


class _Pool:
    """Engine handles of one kind, lent one request at a time, with a bounded queue.

    ``max_waiting`` requests may wait, each at most ``wait_s``; the next is answered 503 with
    ``Retry-After`` at once — sixteen slow dashboard queries then cost the dashboards a retry, not
    the endpoint its threads and memory. None: wait without bound (the writer's own pool).
    """

    def __init__(
        self, name: str, max_waiting: int | None = None, wait_s: float = READER_WAIT_SECONDS
    ) -> None:
        self.name = name
        self._free: queue.Queue[_Handle] = queue.Queue()
        self._max_waiting = max_waiting
        self._wait_s = wait_s
        self._waiting = 0
        self._lock = threading.Lock()

    def add(self, handle: _Handle) -> None:
        self._free.put(handle)

    def take(self) -> _Handle:
        if self._max_waiting is None:
            return self._free.get()
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._waiting >= self._max_waiting:
                raise _busy(self.name, f"{self._waiting} requests already wait for a handle")
            self._waiting += 1
        try:
            return self._free.get(timeout=self._wait_s)
        except queue.Empty:
            raise _busy(self.name, f"no handle was free within {self._wait_s:.0f} s") from None
        finally:
            with self._lock:
                self._waiting -= 1

    def give(self, handle: _Handle) -> None:
        self._free.put(handle)


def _busy(pool: str, why: str) -> QueryError:
    return QueryError(
        f"Code: 202. DB::Exception: Too many simultaneous queries for the {pool} ({why}); retry "
        "shortly. (TOO_MANY_SIMULTANEOUS_QUERIES)",
        202,
        503,
        {"Retry-After": "1"},
    )


@dataclass
class Result:
    """What a request produced, for the reply headers."""

    body: bytes
    fmt: str
    rows_read: int = 0
    bytes_read: int = 0
    rows_written: int = 0
    bytes_written: int = 0
    elapsed_s: float = 0.0
    #: A ``SET`` or ``USE`` statement's effect, for the request's session (never run on a handle).
    set_settings: dict[str, str | None] | None = None
    use_database: str | None = None


@dataclass(frozen=True)
class User:
    """A configured user as the command line reads it: name, password and role
    (:data:`policy.WRITER` or :data:`policy.READER`). Never handed to the engine process."""

    name: str
    password: str
    role: str

    def hashed(self) -> HashedUser:
        salt = secrets.token_hex(16)
        return HashedUser(self.name, self.role, salt, _digest(salt, self.password))


@dataclass(frozen=True)
class HashedUser:
    """A user as the engine process knows it: a salted SHA-256 of the password, as a ClickHouse
    server stores ``sha256_hash … SALT``; the password itself never reaches that process."""

    name: str
    role: str
    salt: str
    digest: str

    def accepts(self, password: str) -> bool:
        return hmac.compare_digest(_digest(self.salt, password), self.digest)


def _digest(salt: str, password: str) -> str:
    return hashlib.sha256((salt + password).encode()).hexdigest()


@dataclass(frozen=True)
class EndpointConfig:
    """Everything the engine process needs, handed over a pipe (no environment, no settings file)."""

    data_dir: str
    host: str
    port: int
    users: list[HashedUser]
    handles: int = 4
    reader_handles: int = 4
    reader_queue: int = 32
    default_database: str = "default"
    max_body_bytes: int = 512 * 1024 * 1024
    socket_timeout_s: float = 30.0
    log_level: str = "INFO"

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> EndpointConfig:
        d = orjson.loads(raw)
        d["users"] = [HashedUser(**u) for u in d["users"]]
        return cls(**d)


class ChdbEngine:
    """Pools of chdb handles over one data directory: the writer's, the readers', the audit log's.

    chdb runs queries on different handles in parallel, but a handle serves one statement at a time
    and a handle with an open stream silently returns empty results; so each request checks a handle
    out for its whole duration. Writers, readers and the readers' audit appends draw from separate
    pools: slow dashboard queries queue among themselves (a bounded queue, then 503), run at a
    lower thread priority, and never hold the handle a worker's insert needs.

    Every handle opens with :data:`chdb_settings.FORCED` (Values parses literals only…) and every
    reader handle with ``readonly=2``: the engine itself refuses a reader's write and data evaluated
    as code, even for a statement that went round the policy. Parameterised queries are
    serialised: in chdb 4.x they clash across parallel handles (chdb-node PR #51).
    """

    def __init__(
        self, data_dir: Path, handles: int = 4, reader_handles: int | None = None, reader_queue: int = 32
    ) -> None:
        import chdb  # imported here so that importing this module never starts an engine

        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.spool_dir = _spool_dir(data_dir)
        self._pools = {
            WRITER: _Pool("writer"),
            READER: _Pool("readers", max_waiting=reader_queue),
            "audit": _Pool("readers' audit log", max_waiting=reader_queue),
        }
        forced = "&".join(f"{k}={v}" for k, v in FORCED.items())
        kinds = ((WRITER, handles, ""), (READER, reader_handles or handles, "&readonly=2"), ("audit", 1, ""))
        for kind, n, extra in kinds:
            for _ in range(max(1, n)):
                dsn = f"{data_dir}?{forced}{extra}"
                self._pools[kind].add(_Handle(chdb.connect(dsn), dsn))
        self._param_lock = threading.Lock()
        h = self._pools[WRITER].take()
        try:
            self.file_databases = frozenset(
                self._pairs(
                    h, "SELECT name, engine FROM system.databases WHERE engine IN ('Overlay', 'Filesystem')"
                )
            )
            self._raw(h, f"CREATE DATABASE IF NOT EXISTS {SHADOW_DATABASE} ENGINE = Atomic")
            self.settings_policy = SettingsPolicy(
                types=self._pairs(h, "SELECT name, type FROM system.settings"),
                table_types=self._pairs(h, "SELECT name, type FROM system.merge_tree_settings"),
            )
            self.table_functions = frozenset(
                name.lower()
                for name in self._pairs(
                    h,
                    "SELECT name, '' FROM system.table_functions "
                    "WHERE name NOT IN (SELECT name FROM system.functions)",
                )
            )
            self.timezone = self._raw(h, "SELECT timezone()").bytes().decode().strip()
            self.version = self._raw(h, "SELECT version()").bytes().decode().strip()
        finally:
            self._pools[WRITER].give(h)

    def _pairs(self, h: _Handle, sql: str) -> dict[str, str]:
        rows = self._raw(h, sql).bytes().decode()
        return dict(line.split("\t", 1) for line in rows.splitlines() if "\t" in line)

    @staticmethod
    def _raw(h: _Handle, sql: str, fmt: str = "TabSeparated", params: dict | None = None) -> object:
        return h.conn.query(sql, fmt, params=params) if params else h.conn.query(sql, fmt)  # type: ignore[attr-defined]

    def _databases(self, h: _Handle) -> tuple[frozenset[str], frozenset[str]]:
        """Every database of the engine, and Dozor's (those holding the migrations table), lower-cased,
        read afresh for each reader statement: a database the writer made a moment ago is known."""
        rows = (
            self._raw(
                h,
                "SELECT name, name IN (SELECT database FROM system.tables WHERE name = "  # noqa: S608
                f"'{MIGRATIONS_TABLE}') FROM system.databases",
            )
            .bytes()
            .decode()
        )  # type: ignore[attr-defined]
        pairs = [line.split("\t") for line in rows.splitlines() if "\t" in line]
        every = frozenset(name.lower() for name, _ in pairs)
        dozor = {name.lower() for name, flag in pairs if flag == "1"}
        if SHADOW_DATABASE.lower() in dozor:  # requests for the engine's default run there
            dozor |= {d.lower() for d in self.file_databases}
        return every, frozenset(dozor)

    def database_for(self, database: str) -> str:
        """Where a request for ``database`` runs: the shadow of a database that reads host files by
        name (:data:`SHADOW_DATABASE`), else ``database`` itself."""
        return SHADOW_DATABASE if database in self.file_databases else database

    def _prepare(self, h: _Handle, user: User | HashedUser, database: str, settings: dict[str, str]) -> None:
        """Make the handle's database and settings those of this request, in one ``SET``: what the
        previous request changed back to DEFAULT, the fixed settings, the reader's limits, then the
        request's own — every value a quoted literal, so nothing can be pasted in.

        The ``SET`` is itself a statement the engine parses under the handle's settings, so a
        request's settings can leave a handle unable to reset (``max_query_size = 30``, a parser
        limit): then the handle is closed and opened afresh, with nothing of any request on it."""
        try:
            self._reset(h, user, database, settings)
        except Exception:
            log.warning("an engine handle could not reset its settings; opening it again")
            self._reopen(h)
            self._reset(h, user, database, settings)

    def _reset(self, h: _Handle, user: User | HashedUser, database: str, settings: dict[str, str]) -> None:
        wanted = {**settings, **FORCED, **(READER_LIMITS if user.role == READER else {})}
        items = [f"{n} = DEFAULT" for n in sorted(h.changed - wanted.keys())]
        items += [f"{n} = {literal(v)}" for n, v in wanted.items() if _SETTING_NAME.match(n)]
        if database != h.database:
            # Before the request's settings are on the handle, so a USE always parses.
            self._raw(h, f"USE `{database.replace('`', '')}`")
            h.database = database
        self._raw(h, "SET " + ", ".join(items))
        h.changed = set(settings) - FORCED.keys()

    @staticmethod
    def _reopen(h: _Handle) -> None:
        import chdb

        with contextlib.suppress(Exception):
            h.conn.close()  # type: ignore[attr-defined]
        h.conn = chdb.connect(h.dsn)
        h.database, h.changed = "default", set()

    def _statement(
        self,
        h: _Handle,
        user: User | HashedUser,
        sql: str,
        database: str,
        settings: dict[str, str],
        readonly: bool,
        params: dict | None = None,
        insert_format: str | None = None,
    ) -> Statement:
        """Parse ``sql`` with the engine's own parser, twice (tree and canonical text), and refuse
        what ``user`` may not run (:func:`chdb_policy.check`)."""
        size = len(sql.encode())
        limit = int(settings.get("max_query_size", DEFAULT_MAX_QUERY_SIZE))
        if size <= limit < size + 64:
            # A statement just under the request's limit must not fail for the check's own prefix.
            self._prepare(h, user, database, {**settings, "max_query_size": str(size + 64)})
        try:
            with self._param_lock:
                # The value of a String query parameter is read in the escaped (TSV) form.
                escaped = sql.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                formatted = self._raw(
                    h, "SELECT formatQuerySingleLine({q:String})", "TabSeparatedRaw", {"q": escaped}
                )
                # Bound parameters must be known to parse a statement that uses them.
                explained = self._raw(h, f"EXPLAIN AST {sql}", "TabSeparatedRaw", params or None)
            databases = dozor = None
            if user.role == READER:
                databases, dozor = self._databases(h)
            canonical = formatted.bytes().decode()  # type: ignore[attr-defined]
            statement = Statement(
                tree=parse_ast(explained.bytes().decode()),  # type: ignore[attr-defined]
                tokens=tokens(canonical),
                role=user.role,
                user=user.name,
                database=database,
                readonly=readonly,
                insert_format=insert_format,
                settings=self.settings_policy,
                table_functions=self.table_functions,
                file_databases=self.file_databases,
                text=canonical,
                databases=databases,
                dozor_databases=dozor,
            )
            check(statement)
            if size <= limit < size + 64:
                self._prepare(h, user, database, settings)
        except Denied as e:
            raise QueryError(str(e), e.code) from None
        except Unreadable as e:
            raise QueryError(f"Code: 62. DB::Exception: {e}. (SYNTAX_ERROR)", 62) from None
        except Exception as e:
            err = _error_from(e)
            raise QueryError(
                str(err).replace("In scope SELECT formatQuerySingleLine", "In"), err.code
            ) from None
        if statement.tokens[:2] and [t.keyword for t in statement.tokens[:2]] == ["CREATE", "TEMPORARY"]:
            raise QueryError(
                "Code: 48. DB::Exception: temporary tables are not supported by the embedded endpoint "
                "(its engine handles are shared between sessions); create a regular table. (NOT_IMPLEMENTED)",
                48,
            )
        return statement

    def _check_settings(self, settings: dict[str, str], user: User | HashedUser) -> None:
        for name in settings:
            if not _SETTING_NAME.match(name):
                raise QueryError(
                    f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)", 115
                )
            try:
                self.settings_policy.check(name, user.role, user.name)
            except SettingRefused as e:
                raise QueryError(str(e), e.code) from None

    def execute(
        self,
        sql: str,
        fmt: str,
        database: str = "default",
        settings: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        user: User | HashedUser | None = None,
        readonly: bool = False,
    ) -> Result:
        """Run one statement and return its output in ``fmt`` (unless the SQL names a FORMAT)."""
        user = user or User("default", "", WRITER)
        settings = settings or {}
        database = self.database_for(database)
        self._check_settings(settings, user)
        if not format_allowed(fmt):
            raise QueryError(f"Code: 497. DB::Exception: format {fmt} is not allowed through this endpoint. "
                             "(ACCESS_DENIED)", 497)  # fmt: skip
        pool = self._pools[user.role]
        h = pool.take()
        try:
            self._prepare(h, user, database, settings)
            statement = self._statement(h, user, sql, database, settings, readonly, params)
            if statement.kind == "Set":
                return Result(body=b"", fmt="", set_settings=self._session_set(statement, user))
            if statement.kind == "UseQuery":
                return Result(body=b"", fmt="", use_database=statement.tree.name.strip("`"))
            t0 = time.perf_counter()
            out = output_format(statement, fmt)
            # Only a SELECT streams (the engine refuses to for DESCRIBE, SHOW…, whose results are
            # the size of a schema anyway).
            select = statement.kind in _SELECTS
            if select and streamed(out):
                limit = READER_MAX_RESULT_BYTES if user.role == READER else None
                with self._param_lock if params else contextlib.nullcontext():
                    return self._streamed(h, sql, fmt, params, limit, t0)
            if select and user.role == READER:
                raise QueryError(
                    f"Code: 497. DB::Exception: format {out} is written whole, not block by block; the "
                    "reader's results come in Native, RowBinary, TSV, CSV or JSONEachRow. (ACCESS_DENIED)",
                    497,
                )
            if params:
                with self._param_lock:
                    r = self._raw(h, sql, fmt, params)
            else:
                r = self._raw(h, sql, fmt)
            return Result(
                body=r.bytes(),  # type: ignore[attr-defined]
                fmt=fmt if statement.kind in RESULT_STATEMENTS else "",
                rows_read=int(r.rows_read()),  # type: ignore[attr-defined]
                bytes_read=int(r.bytes_read()),  # type: ignore[attr-defined]
                rows_written=int(r.rows_written()),  # type: ignore[attr-defined]
                bytes_written=int(r.bytes_written()),  # type: ignore[attr-defined]
                elapsed_s=time.perf_counter() - t0,
            )
        except QueryError:
            raise
        except Exception as e:  # chdb raises ChdbError/RuntimeError with ClickHouse's text
            raise _error_from(e) from e
        finally:
            pool.give(h)

    @staticmethod
    def _streamed(
        h: _Handle, sql: str, fmt: str, params: dict | None, limit: int | None, t0: float
    ) -> Result:
        """A result read from the engine block by block, refused (396) once it passes ``limit``
        bytes. The stream is always closed: a handle with an open stream answers the next query
        with nothing."""
        send = h.conn.send_query  # type: ignore[attr-defined]
        stream = send(sql, fmt, params=params) if params else send(sql, fmt)
        parts: list[bytes] = []
        size = rows = read = 0
        try:
            for chunk in stream:
                data = chunk.bytes()
                size += len(data)
                if limit is not None and size > limit:
                    raise QueryError(
                        f"Code: 396. DB::Exception: Limit for result exceeded, max bytes: {limit >> 20} MiB "
                        "(the endpoint's bound on a reader's result). (TOO_MANY_ROWS_OR_BYTES)",
                        396,
                    )
                parts.append(data)
                rows += int(chunk.rows_read())
                read += int(chunk.bytes_read())
        finally:
            stream.cancel()
        return Result(
            body=b"".join(parts), fmt=fmt, rows_read=rows, bytes_read=read, elapsed_s=time.perf_counter() - t0
        )

    def _session_set(self, statement: Statement, user: User | HashedUser) -> dict[str, str | None]:
        """A SET statement's items for the request's session (None: back to the default); each
        checked as a URL setting would be, each value one literal."""
        try:
            items = set_statement(statement.tokens)
        except Unreadable as e:
            raise QueryError(f"Code: 62. DB::Exception: {e}. (SYNTAX_ERROR)", 62) from None
        out: dict[str, str | None] = {}
        for item in items:
            self._check_settings({item.name: ""}, user)
            if item.value is None and not item.default:
                raise QueryError(
                    f"Code: 164. DB::Exception: the value of '{item.name}' must be one literal. (READONLY)",
                    164,
                )
            out[item.name] = None if item.default else item.value
        return out

    def insert(
        self,
        statement: str,
        fmt: str,
        chunks: Iterator[bytes],
        database: str = "default",
        settings: dict[str, str] | None = None,
        user: User | HashedUser | None = None,
    ) -> Result:
        """Spool data in ``fmt`` to a file and insert it with ``statement`` (``INSERT INTO t (cols)``).

        Not chdb's streaming ``send_insert``: in chdb 4.4 its ``finish()`` reports rows written for
        an insert the engine refused while writing parts (an insert spanning more than
        ``max_partitions_per_insert_block`` partitions returned ``rows_written=1000`` and stored
        nothing), so a client was told "written" for data that was lost. ``INSERT … FROM INFILE``
        runs as an ordinary query, which raises every engine error with its code, and measured as
        fast (300k JSON rows: 0.10 s against 0.11 s). The file lives on tmpfs where there is one.
        The reader's audit appends use a handle of their own, never a read-only one.
        """
        user = user or User("default", "", WRITER)
        settings = settings or {}
        database = self.database_for(database)
        self._check_settings(settings, user)
        path = self.spool_dir / f"insert-{uuid.uuid4().hex}"
        pool = self._pools["audit" if user.role == READER else WRITER]
        h = pool.take()
        try:
            self._prepare(h, user, database, settings)
            checked = self._statement(
                h, user, f"{statement} FORMAT {fmt}", database, settings, readonly=False, insert_format=fmt
            )
            with open(path, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            t0 = time.perf_counter()
            r = self._raw(h, _from_infile(checked, path), "TabSeparated")
            return Result(
                body=b"",
                fmt="",
                rows_written=int(r.rows_written()),  # type: ignore[attr-defined]
                bytes_written=int(r.bytes_written()),  # type: ignore[attr-defined]
                elapsed_s=time.perf_counter() - t0,
            )
        except QueryError:
            raise
        except Exception as e:
            raise _error_from(e) from e
        finally:
            path.unlink(missing_ok=True)
            pool.give(h)


def _spool_dir(data_dir: Path, sweep: bool = False) -> Path:
    """Where insert bodies wait for the engine: tmpfs if the machine has it, else the data directory.

    With ``sweep`` (once, before the process is confined: afterwards it can see no other spool),
    the spools of endpoints that are gone (killed, or stopped by a signal that skips clean-up) are
    removed: each may hold the body of an insert it never finished, and they piled up in tmpfs."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else data_dir
    for old in base.glob("dozor-chdb-spool-*") if sweep else ():
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    path = base / f"dozor-chdb-spool-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _from_infile(checked: Statement, path: Path) -> str:
    """The statement the policy checked, in the engine's canonical text, reading its rows from
    ``path``: ``INSERT INTO t (cols) FROM INFILE 'path' [SETTINGS …] FORMAT f``.

    Built from the canonical tokens, not the client's text, so a comment or a string that looks
    like a clause cannot move ``FROM INFILE`` to where it means something else."""
    toks = checked.tokens
    fmt_at = max(i for i, t in enumerate(toks) if t.keyword == "FORMAT")
    settings_at = next((i for i, t in enumerate(toks[:fmt_at]) if t.keyword == "SETTINGS"), fmt_at)
    text = checked.text
    head, clause = text[: toks[settings_at].start], text[toks[settings_at].start : toks[fmt_at].start]
    return f"{head.rstrip()} FROM INFILE {literal(str(path))} {clause}{text[toks[fmt_at].start :]}"


class _ChunkReader:
    """A file-like ``read(n)`` over an iterator of byte chunks (for zstandard's stream reader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return b""
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _decoded(encoding: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A request body's Content-Encoding undone piece by piece: no piece is larger than
    :data:`_PIECE`, however far one compressed chunk unpacks, so the caller counts every byte
    against its limit before the next is made."""
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        yield from chunks
    elif enc == "lz4":
        import lz4.frame

        lz = lz4.frame.LZ4FrameDecompressor()
        for chunk in chunks:
            yield lz.decompress(chunk, max_length=_PIECE)
            while not lz.needs_input and not lz.eof:
                yield lz.decompress(b"", max_length=_PIECE)
    elif enc == "zstd":
        import zstandard

        yield from zstandard.ZstdDecompressor().read_to_iter(_ChunkReader(chunks), write_size=_PIECE)
    elif enc in ("gzip", "x-gzip", "deflate"):
        z = zlib.decompressobj(16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS)
        for chunk in chunks:
            data = chunk
            while data:
                yield z.decompress(data, _PIECE)
                data = z.unconsumed_tail
        yield z.flush(_PIECE)
    else:
        raise QueryError(f"Code: 1001. Unsupported Content-Encoding: {encoding}", 1001, 415)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this every reply waits out the peer's delayed ACK: 44 ms per query (ARCHITECTURE.md).
    disable_nagle_algorithm = True
    server: ChdbHTTPServer

    def setup(self) -> None:
        # A socket read or write that waits longer than this closes the connection, as a server's
        # http_receive_timeout does: a client that trickles its request one byte a minute (or
        # never sends one) holds a thread for that long, not for ever. A running query does not
        # touch the socket, so no query is cut short by it.
        self.timeout = self.server.socket_timeout_s
        super().setup()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    # --- body reading -----------------------------------------------------------------------
    def _raw_chunks(self, limit: int) -> Iterator[bytes]:
        seen = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(65537)
                digits = line.split(b";", 1)[0].strip()
                if not re.fullmatch(rb"[0-9A-Fa-f]{1,15}", digits):  # no sign, no `0x`, no 2**64
                    self.close_connection = True
                    raise QueryError(
                        "Code: 1001. DB::Exception: a malformed chunk of the request body", 1001, 400
                    )
                size = int(digits, 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                seen += size
                if seen > limit:
                    self.close_connection = True  # the rest of the body is not read
                    raise _too_large(limit)
                while size > 0:
                    data = self.rfile.read(min(size, _PIECE))
                    if not data:
                        return
                    size -= len(data)
                    yield data
                self.rfile.readline(3)
        else:
            try:
                remaining = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                remaining = -1
            if remaining < 0 or remaining > limit:
                self.close_connection = True
                raise _too_large(limit)
            while remaining > 0:
                data = self.rfile.read(min(remaining, _PIECE))
                if not data:
                    return
                remaining -= len(data)
                yield data

    def _body_chunks(self, limit: int) -> Iterator[bytes]:
        """The body, decoded, each piece counted against ``limit`` before the next is read."""
        seen = 0
        for out in _decoded(self.headers.get("Content-Encoding", ""), self._raw_chunks(limit)):
            seen += len(out)
            if seen > limit:  # a small compressed body can unpack to any size
                self.close_connection = True
                raise _too_large(limit)
            if out:
                yield out

    # --- dispatch -----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = urlsplit(self.path).path
        if path in ("/ping", "/") and "query=" not in self.path:
            self._reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        self._serve(readonly=True)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._serve(readonly=False)

    def _authenticate(self, params: dict[str, str]) -> HashedUser:
        """The user of this request, from HTTP basic auth, X-ClickHouse-User/Key or the user and
        password URL parameters (as a server reads them); 516 otherwise."""
        name = params.get("user") or self.headers.get("X-ClickHouse-User") or ""
        given = params.get("password") or self.headers.get("X-ClickHouse-Key") or ""
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                name, _, given = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                name, given = "", ""
        name = name or "default"
        user = self.server.users.get(name)
        if user is None or not user.accepts(given):
            raise QueryError(
                f"Code: 516. DB::Exception: {name}: Authentication failed: password is incorrect, or "
                "there is no user with such name. (AUTHENTICATION_FAILED)",
                516,
                401,
            )
        return user

    def _form(self, params: dict[str, str], body: bytes) -> dict[str, str]:
        """Fields of a multipart/form-data body (clickhouse-connect sends the query and bound
        parameters so once they pass ~4 KB), merged over the URL parameters."""
        content_type = self.headers.get("Content-Type", "")
        m = re.search(r'boundary="?([^";]{1,200})', content_type)
        if m is None or body.count(b"--" + m.group(1).encode()) > MAX_FORM_PARTS + 1:
            raise QueryError(
                f"Code: 1001. DB::Exception: a multipart form without a boundary or with more than "
                f"{MAX_FORM_PARTS} parts. (BAD_ARGUMENTS)",
                1001,
                400,
            )
        msg = BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        out = dict(params)
        for part in msg.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            if name:
                out[name] = _text(part.get_payload(decode=True) or b"")
        return out

    def _serve(self, readonly: bool) -> None:
        query_id = str(uuid.uuid4())
        body_iter: Iterator[bytes] | None = None
        session: _Session | None = None
        try:
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            asked = params.get("query_id") or ""
            query_id = asked if _QUERY_ID.match(asked) else query_id
            user = self._authenticate(params)
            # The reader streams nothing but its audit rows: its whole body is a statement's size.
            limit = MAX_STATEMENT_BYTES if user.role == READER else self.server.max_body_bytes
            body_iter = self._body_chunks(limit)
            if self.headers.get("Content-Type", "").lower().startswith("multipart/form-data"):
                params = self._form(params, _bounded(body_iter, MAX_STATEMENT_BYTES))
                body_iter = iter(())
            session = self.server.sessions.enter(user, params)
            database = (
                params.get("database") or (session and session.database) or self.server.default_database
            )
            fmt = params.get("default_format") or "TabSeparated"
            settings = {
                **(session.settings if session else {}),
                **{k: v for k, v in params.items() if k not in _HTTP_PARAMS and not k.startswith("param_")},
            }
            qparams = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
            if "query" in params:
                statement, data = params["query"], b""
            else:
                buf = self._read_head(body_iter)
                nl = buf.find(b"\n")
                statement, data = (buf, b"") if nl < 0 else (buf[:nl], buf[nl + 1 :])
                statement = _text(statement)
            m = _INSERT_HEAD.match(statement) if _IS_INSERT.match(statement) else None
            engine = self.server.engine
            if m and not readonly:
                result = engine.insert(
                    m.group("stmt"), m.group("fmt"), _prepend(data, body_iter), database, settings, user
                )
            else:
                rest = data + _bounded(body_iter, MAX_STATEMENT_BYTES - len(data))
                sql = statement + ("\n" + _text(rest) if rest else "")
                result = engine.execute(sql, fmt, database, settings, qparams, user, readonly)
            if session is not None:
                session.apply(result)
            self._reply(200, result.body, self._headers(query_id, result))
        except QueryError as e:
            if e.status == 413:
                self.close_connection = True  # the rest of the body is never read
            self._drain(body_iter)
            self._reply(
                e.status,
                (str(e).rstrip() + "\n").encode(),
                {
                    "X-ClickHouse-Exception-Code": str(e.code),
                    "X-ClickHouse-Query-Id": query_id,
                    "Content-Type": "text/plain; charset=UTF-8",
                    **e.headers,
                },
            )
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception as e:  # a bug here must still answer as ClickHouse would, not hang
            log.exception("request failed")
            self._drain(body_iter)
            self._reply(
                500,
                f"Code: 1001. DB::Exception: {type(e).__name__}: {e}\n".encode(errors="replace"),
                {"X-ClickHouse-Exception-Code": "1001", "X-ClickHouse-Query-Id": query_id},
            )
        finally:
            if session is not None:
                session.leave()

    @staticmethod
    def _read_head(chunks: Iterator[bytes]) -> bytes:
        """Buffer the body until the first line (an INSERT's statement) is complete or it ends."""
        buf = bytearray()
        for chunk in chunks:
            buf += chunk
            if b"\n" in buf or len(buf) > _MAX_HEAD:
                break
        return bytes(buf)

    def _drain(self, body_iter: Iterator[bytes] | None) -> None:
        """Read what is left of a refused request's body, so the connection can serve the next
        one; a body too large to read is not read, and the connection is closed instead."""
        if self.close_connection:
            return
        try:
            for _ in body_iter or ():
                pass
        except Exception:
            self.close_connection = True

    def _headers(self, query_id: str, r: Result) -> dict[str, str]:
        summary = {
            "read_rows": str(r.rows_read),
            "read_bytes": str(r.bytes_read),
            "written_rows": str(r.rows_written),
            "written_bytes": str(r.bytes_written),
            "total_rows_to_read": str(r.rows_read),
            "result_rows": "0",
            "result_bytes": str(len(r.body)),
            "elapsed_ns": str(int(r.elapsed_s * 1e9)),
        }
        headers = {
            "Content-Type": "application/octet-stream"
            if r.fmt in ("Native", "RowBinary", "Parquet", "Arrow")
            else "text/plain; charset=UTF-8",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.engine.timezone,
            "X-ClickHouse-Server-Display-Name": "dozor-chdb",
            "X-ClickHouse-Summary": orjson.dumps(summary).decode(),
        }
        if r.fmt:  # a server names the format only of a reply that has a result
            headers["X-ClickHouse-Format"] = r.fmt
        return headers

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except (TimeoutError, ConnectionError):
            self.close_connection = True


def _bounded(chunks: Iterator[bytes], limit: int) -> bytes:
    """All of ``chunks`` joined, refused (413) as soon as they pass ``limit`` bytes."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            raise _too_large(limit)
    return bytes(buf)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _too_large(limit: int) -> QueryError:
    return QueryError(
        f"Code: 1001. DB::Exception: request body larger than {limit} bytes (DOZOR_CLICKHOUSE_MAX_BODY_MB "
        "for inserts; a statement is at most 16 MiB)",
        1001,
        413,
    )


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as e:
        raise QueryError(
            f"Code: 36. DB::Exception: the statement is not valid UTF-8 (byte {e.start}); the embedded "
            "endpoint takes text statements only (docs/clickhouse-endpoint.md). (BAD_ARGUMENTS)",
            36,
        ) from None


@dataclass
class _Session:
    """What a ``session_id`` remembers between requests: its database and its settings."""

    id: str
    user: str
    timeout_s: float
    database: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    expires: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def apply(self, result: Result) -> None:
        for name, value in (result.set_settings or {}).items():
            if value is None:
                self.settings.pop(name, None)
            else:
                self.settings[name] = value
        if result.use_database:
            self.database = result.use_database

    def leave(self) -> None:
        self.expires = time.monotonic() + self.timeout_s
        self.lock.release()


class _Sessions:
    """Sessions as a server keeps them: per user and ``session_id``, one request at a time, gone
    after ``session_timeout`` seconds unused (60 by default)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], _Session] = {}
        self._lock = threading.Lock()

    def enter(self, user: HashedUser, params: dict[str, str]) -> _Session | None:
        sid = params.get("session_id")
        if not sid:
            return None
        try:
            timeout = float(params.get("session_timeout") or 60)
        except ValueError:
            raise QueryError(
                "Code: 27. DB::Exception: invalid session_timeout. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)", 27
            ) from None
        now = time.monotonic()
        with self._lock:
            for key in [
                k for k, v in self._by_key.items() if v.expires and v.expires < now and not v.lock.locked()
            ]:
                del self._by_key[key]
            session = self._by_key.get((user.name, sid))
            if session is None:
                if params.get("session_check") == "1":
                    raise QueryError(
                        f"Code: 372. DB::Exception: Session {sid} not found. (SESSION_NOT_FOUND)", 372
                    )
                session = self._by_key[(user.name, sid)] = _Session(sid, user.name, timeout)
        if not session.lock.acquire(blocking=False):
            raise QueryError(
                f"Code: 373. DB::Exception: Session {sid} is locked by a concurrent client. "
                "(SESSION_IS_LOCKED)",
                373,
            )
        session.timeout_s = timeout
        return session


class ChdbHTTPServer(ThreadingHTTPServer):
    """The threaded HTTP server that owns the engine. It binds its port when made; the engine is
    attached after (:meth:`attach`), once the process is confined."""

    daemon_threads = True
    allow_reuse_address = True
    # The stdlib default of 5 refuses connections when a few dashboards and workers start at once.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        users: list[HashedUser],
        default_database: str = "default",
        max_body_bytes: int = 512 * 1024 * 1024,
        socket_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(address, _Handler)
        self.users = {u.name: u for u in users}
        self.sessions = _Sessions()
        self.default_database = default_database
        self.max_body_bytes = max_body_bytes
        self.socket_timeout_s = socket_timeout_s
        self.engine: ChdbEngine

    def attach(self, engine: ChdbEngine) -> None:
        self.engine = engine


def check_users(users: list[User], host: str, production: bool) -> None:
    """Refuse to serve anyone without a password where that matters: in production, or bound to
    any address but loopback (the port would be open to the network)."""
    loopback = host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
    if not production and loopback:
        return
    where = "in production" if production else f"on {host}, which is not loopback"
    for u in users:
        if not u.password:
            var = "DOZOR_CLICKHOUSE_PASSWORD" if u.role == WRITER else "DOZOR_CLICKHOUSE_READER_PASSWORD"
            raise ConfigError(f"the ClickHouse endpoint will not serve {where} without passwords: set {var}")


def launch(config: EndpointConfig) -> None:
    """Replace this process with the engine process, handing it ``config`` over a pipe.

    The same process id goes on (a supervisor that started ``dozor clickhouse serve`` stops the
    engine), but with an environment of harmless variables only (``infra/sandbox.py``): whatever
    this process was given — passwords, the plate salt, Kafka credentials — is not in the new one,
    whose users carry salted hashes.
    """
    from dozor.infra.sandbox import clean_environment

    read_fd, write_fd = os.pipe()
    payload = config.to_json()
    if len(payload) > 60_000:  # a pipe holds 64 KiB before a write blocks
        raise ConfigError("the endpoint's configuration is too large to hand over")
    os.write(write_fd, payload)
    os.close(write_fd)
    os.set_inheritable(read_fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, "-m", "dozor.infra.chdb_http", "--config-fd", str(read_fd)]
    os.execve(sys.executable, argv, clean_environment(os.environ))


def _read_config(fd: int) -> EndpointConfig:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return EndpointConfig.from_json(b"".join(chunks))


def open_confined(config: EndpointConfig) -> tuple[ChdbHTTPServer, ChdbEngine]:
    """Bind the port, confine the process (files, network), then open the engine: in that order,
    so the engine and every thread it starts run confined, and the port is bound before binding
    is closed. The tests use it too, to show what the confinement stops on its own."""
    from dozor.infra.sandbox import confine

    data_dir = Path(config.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ChdbHTTPServer(
        (config.host, config.port),
        config.users,
        config.default_database,
        config.max_body_bytes,
        config.socket_timeout_s,
    )
    spool = _spool_dir(data_dir, sweep=True)
    # chdb makes a scratch directory under TMPDIR when it is imported: keep it in the data directory.
    tmp = data_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    import lz4.frame  # noqa: F401 - the codecs are imported before confinement closes the disk
    import zstandard  # noqa: F401

    confine(writable=[data_dir, spool])
    # Relative names (a path in a statement, the engine's own scratch files) resolve in an empty
    # directory of the engine's, not wherever the service was started (a checkout holds .env).
    cwd = data_dir / "cwd"
    cwd.mkdir(exist_ok=True)
    os.chdir(cwd)
    engine = ChdbEngine(data_dir, config.handles, config.reader_handles, config.reader_queue)
    server.attach(engine)
    return server, engine


def main(argv: list[str] | None = None) -> None:
    """``python -m dozor.infra.chdb_http --config-fd N``: the engine process (see :func:`launch`)."""
    from dozor.logs import configure_logging

    parser = argparse.ArgumentParser(prog="dozor clickhouse serve (engine)")
    parser.add_argument("--config-fd", type=int, required=True)
    config = _read_config(parser.parse_args(argv).config_fd)
    configure_logging(config.log_level)
    server, engine = open_confined(config)
    log.info(
        "ClickHouse %s (chdb) on %s serving http://%s:%d",
        engine.version,
        config.data_dir,
        config.host,
        config.port,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        shutil.rmtree(engine.spool_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
