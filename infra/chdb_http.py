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
  Settings are applied with ``SET`` on the engine handle that serves the request and reset to
  ``DEFAULT`` afterwards, so they never leak into another request. Unknown settings are refused as
  ClickHouse refuses them (code 115).
- Request bodies may be compressed (``Content-Encoding`` lz4 frame, zstd, gzip, deflate); chunked
  transfer encoding is understood. Replies are not compressed: this endpoint serves loopback.
- Errors are HTTP 500 with the ClickHouse exception text and ``X-ClickHouse-Exception-Code``.
- Replies carry ``X-ClickHouse-Query-Id``, ``X-ClickHouse-Format``, ``X-ClickHouse-Timezone`` and
  ``X-ClickHouse-Summary``.

Sessions (``session_id``) are accepted and ignored: each request stands alone, which is how Dozor's
clients use ClickHouse (``autogenerate_session_id=False``). Temporary tables therefore do not survive
between requests.
"""

from __future__ import annotations

import base64
import email.policy
import hmac
import logging
import os
import queue
import re
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson

from dozor.errors import ConfigError
from dozor.infra.chdb_policy import (
    READER,
    READER_LIMITS,
    READER_SETTINGS,
    WRITER,
    Denied,
    Node,
    check,
    parse_ast,
    set_items,
)

__all__ = ["ChdbEngine", "ChdbHTTPServer", "QueryError", "User", "check_users", "serve"]

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


class QueryError(Exception):
    """A failure to answer as ClickHouse would: ``code`` goes into X-ClickHouse-Exception-Code."""

    def __init__(self, message: str, code: int = 1001, status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _error_from(exc: BaseException) -> QueryError:
    text = str(exc)
    m = _CODE.search(text)
    return QueryError(text, int(m.group(1)) if m else 1001)


@dataclass
class _Handle:
    """One chdb connection: its own current database and settings, used by one request at a time."""

    conn: object
    database: str = "default"
    changed: dict[str, str] = field(default_factory=dict)


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
    set_settings: dict[str, str] | None = None
    use_database: str | None = None


@dataclass(frozen=True)
class User:
    """A configured user: name, password and role (:data:`policy.WRITER` or :data:`policy.READER`)."""

    name: str
    password: str
    role: str


class ChdbEngine:
    """Two pools of chdb handles over one data directory: one for writers, one for readers.

    chdb runs queries on different handles in parallel, but a handle serves one statement at a time
    and a handle with an open stream silently returns empty results; so each request checks a handle
    out for its whole duration. Writers and readers draw from separate pools, so slow dashboard
    queries queue among themselves and never hold the handle a worker's insert needs.
    Parameterised queries are serialised: in chdb 4.x they clash across parallel handles
    (chdb-node PR #51).

    Every statement passes :mod:`dozor.infra.chdb_policy` first (one statement, allowed for the
    user's role, no host access). ``SET`` and ``USE`` never reach a handle: their effect is handed
    back for the request's session, so no request can change what a later one on the same handle
    does.
    """

    def __init__(self, data_dir: Path, handles: int = 4, reader_handles: int | None = None) -> None:
        import chdb  # imported here so that importing this module never starts an engine

        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.spool_dir = _spool_dir(data_dir)
        self._pools: dict[str, queue.Queue[_Handle]] = {WRITER: queue.Queue(), READER: queue.Queue()}
        for role, n in ((WRITER, handles), (READER, reader_handles or handles)):
            for _ in range(max(1, n)):
                self._pools[role].put(_Handle(chdb.connect(str(data_dir))))
        self._param_lock = threading.Lock()
        h = self._pools[WRITER].get()
        try:
            rows = self._raw(h, "SELECT name, type FROM system.settings", "TabSeparated").bytes().decode()
            self.setting_types = dict(line.split("\t", 1) for line in rows.splitlines() if "\t" in line)
            self.settings = frozenset(self.setting_types)
            self.timezone = self._raw(h, "SELECT timezone()", "TabSeparated").bytes().decode().strip()
            self.version = self._raw(h, "SELECT version()", "TabSeparated").bytes().decode().strip()
        finally:
            self._pools[WRITER].put(h)

    @staticmethod
    def _raw(h: _Handle, sql: str, fmt: str = "TabSeparated", params: dict | None = None) -> object:
        return h.conn.query(sql, fmt, params=params) if params else h.conn.query(sql, fmt)

    def _prepare(self, h: _Handle, database: str, settings: dict[str, str]) -> None:
        """Make the handle's database and settings those of this request.

        A handle remembers what it last SET, so the settings every clickhouse-connect request
        repeats cost nothing after the first; the rest go back to DEFAULT.
        """
        if database != h.database:
            self._raw(h, f"USE `{database.replace('`', '')}`")
            h.database = database
        for name in [n for n in h.changed if n not in settings]:
            self._raw(h, f"SET {name} = DEFAULT")
            del h.changed[name]
        for name, value in settings.items():
            if h.changed.get(name) != value:
                self._raw(h, f"SET {name} = {self._literal(name, value)}")
                h.changed[name] = value

    def _literal(self, name: str, value: str) -> str:
        """A setting's value as SQL: quoted for text settings even when it is all digits
        (``log_comment=123``), bare for numbers."""
        if value.startswith("'") and value.endswith("'") and len(value) > 1:
            return value  # already a literal (from a SET statement in a session)
        if "String" not in self.setting_types.get(name, "") and re.fullmatch(r"-?\d+(\.\d+)?", value):
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def _policy(
        self,
        h: _Handle,
        user: User,
        sql: str,
        database: str,
        settings: dict[str, str],
        readonly: bool,
        params: dict | None = None,
    ) -> tuple[Node, str]:
        """Parse ``sql`` with the engine's own parser and refuse what ``user`` may not run.

        Returns the parse tree and the statement in ClickHouse's canonical form.
        """
        size = len(sql.encode())
        limit = int(settings.get("max_query_size", DEFAULT_MAX_QUERY_SIZE))
        if size <= limit < size + 64:
            # A statement just under the request's limit must not fail for the check's own prefix.
            self._prepare(h, database, {**settings, "max_query_size": str(size + 64)})
        try:
            with self._param_lock:
                # The value of a String query parameter is read in the escaped (TSV) form.
                escaped = sql.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                formatted = self._raw(
                    h, "SELECT formatQuerySingleLine({q:String})", "TabSeparatedRaw", {"q": escaped}
                )
                # Bound parameters must be known to parse a statement that uses them.
                explained = self._raw(h, f"EXPLAIN AST {sql}", "TabSeparatedRaw", params or None)
            formatted = formatted.bytes().decode()
            tree = parse_ast(explained.bytes().decode())
            check(tree, user.role, database, readonly)
            self._prepare(h, database, settings)
        except Denied as e:
            raise QueryError(str(e), e.code) from None
        except Exception as e:
            err = _error_from(e)
            raise QueryError(
                str(err).replace("In scope SELECT formatQuerySingleLine", "In"), err.code
            ) from None
        if formatted.upper().startswith("CREATE TEMPORARY"):
            raise QueryError(
                "Code: 48. DB::Exception: temporary tables are not supported by the embedded endpoint "
                "(its engine handles are shared between sessions); create a regular table. (NOT_IMPLEMENTED)",
                48,
            )
        return tree, formatted

    def _checkout(self, role: str) -> _Handle:
        return self._pools[role].get()

    def _settings_for(self, user: User, settings: dict[str, str]) -> dict[str, str]:
        self._check_settings(settings, user)
        return {**settings, **READER_LIMITS} if user.role == READER else settings

    def execute(
        self,
        sql: str,
        fmt: str,
        database: str = "default",
        settings: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        user: User | None = None,
        readonly: bool = False,
    ) -> Result:
        """Run one statement and return its output in ``fmt`` (unless the SQL names a FORMAT)."""
        user = user or User("default", "", WRITER)
        settings = self._settings_for(user, settings or {})
        h = self._checkout(user.role)
        try:
            self._prepare(h, database, settings)
            tree, formatted = self._policy(h, user, sql, database, settings, readonly, params)
            if tree.kind == "Set":
                changes = set_items(formatted)
                self._check_settings({k: "" for k in changes}, user)
                return Result(body=b"", fmt="", set_settings=changes)
            if tree.kind == "UseQuery":
                return Result(body=b"", fmt="", use_database=tree.name.strip("`"))
            t0 = time.perf_counter()
            if params:
                with self._param_lock:
                    r = self._raw(h, sql, fmt, params)
            else:
                r = self._raw(h, sql, fmt)
            elapsed = time.perf_counter() - t0
            returns_rows = tree.kind in RESULT_STATEMENTS
            return Result(
                body=r.bytes(),
                fmt=fmt if returns_rows else "",
                rows_read=int(r.rows_read()),
                bytes_read=int(r.bytes_read()),
                rows_written=int(r.rows_written()),
                bytes_written=int(r.bytes_written()),
                elapsed_s=elapsed,
            )
        except QueryError:
            raise
        except Exception as e:  # chdb raises ChdbError/RuntimeError with ClickHouse's text
            raise _error_from(e) from e
        finally:
            self._pools[user.role].put(h)

    def insert(
        self,
        statement: str,
        fmt: str,
        chunks: Iterator[bytes],
        database: str = "default",
        settings: dict[str, str] | None = None,
        user: User | None = None,
    ) -> Result:
        """Spool data in ``fmt`` to a file and insert it with ``statement`` (``INSERT INTO t (cols)``).

        Not chdb's streaming ``send_insert``: in chdb 4.4 its ``finish()`` reports rows written for
        an insert the engine refused while writing parts (an insert spanning more than
        ``max_partitions_per_insert_block`` partitions returned ``rows_written=1000`` and stored
        nothing), so a client was told "written" for data that was lost. ``INSERT … FROM INFILE``
        runs as an ordinary query, which raises every engine error with its code, and measured as
        fast (300k JSON rows: 0.10 s against 0.11 s). The file lives on tmpfs where there is one.
        """
        user = user or User("default", "", WRITER)
        settings = self._settings_for(user, settings or {})
        target, clause = _split_settings(statement)
        path = self.spool_dir / f"insert-{uuid.uuid4().hex}"
        h = self._checkout(user.role)
        try:
            self._prepare(h, database, settings)
            self._policy(h, user, f"{statement} FORMAT {fmt}", database, settings, readonly=False)
            with open(path, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            t0 = time.perf_counter()
            sql = f"{target} FROM INFILE '{path}'{clause} FORMAT {fmt}"
            r = self._raw(h, sql, "TabSeparated")
            return Result(
                body=b"",
                fmt="",
                rows_written=int(r.rows_written()),
                bytes_written=int(r.bytes_written()),
                elapsed_s=time.perf_counter() - t0,
            )
        except QueryError:
            raise
        except Exception as e:
            raise _error_from(e) from e
        finally:
            path.unlink(missing_ok=True)
            self._pools[user.role].put(h)

    def _check_settings(self, settings: dict[str, str], user: User) -> None:
        for name in settings:
            if not _SETTING_NAME.match(name) or name not in self.settings:
                raise QueryError(
                    f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)", 115
                )
            if user.role == READER and not READER_SETTINGS.match(name):
                raise QueryError(
                    f"Code: 164. DB::Exception: {user.name}: Cannot modify '{name}' setting in readonly "
                    "mode. (READONLY)",
                    164,
                )


#: Statement kinds whose reply is a result (a server names its format only on those).
RESULT_STATEMENTS = frozenset(
    {"SelectWithUnionQuery", "SelectIntersectExceptQuery", "ShowTables", "DescribeQuery",
     "ExistsTableQuery", "ShowCreateTableQuery", "Explain"}
)  # fmt: skip


def _spool_dir(data_dir: Path) -> Path:
    """Where insert bodies wait for the engine: tmpfs if the machine has it, else the data directory."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else data_dir
    path = base / f"dozor-chdb-spool-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _split_settings(statement: str) -> tuple[str, str]:
    """``INSERT INTO t (cols) SETTINGS a=1`` → (``INSERT INTO t (cols)``, `` SETTINGS a=1``).

    ``FROM INFILE`` must stand before a SETTINGS clause, so the clause is moved after it.
    """
    m = re.search(r"\sSETTINGS\s", statement, re.IGNORECASE)
    if m is None or statement.rfind(")") > m.start():
        return statement.rstrip(), ""
    return statement[: m.start()].rstrip(), " " + statement[m.start() :].strip()


class _Decoder:
    """Incremental decoder for a request body's Content-Encoding."""

    def __init__(self, encoding: str) -> None:
        enc = encoding.strip().lower()
        if enc in ("", "identity"):
            self._obj = None
        elif enc == "lz4":
            import lz4.frame

            self._obj = lz4.frame.LZ4FrameDecompressor()
        elif enc == "zstd":
            import zstandard

            self._obj = zstandard.ZstdDecompressor().decompressobj()
        elif enc in ("gzip", "x-gzip"):
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._obj = zlib.decompressobj()
        else:
            raise QueryError(f"Code: 1001. Unsupported Content-Encoding: {encoding}", 1001, 415)

    def feed(self, data: bytes) -> bytes:
        return self._obj.decompress(data) if self._obj is not None else data


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this every reply waits out the peer's delayed ACK: 44 ms per query (ARCHITECTURE.md).
    disable_nagle_algorithm = True
    server: ChdbHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    # --- body reading -----------------------------------------------------------------------
    def _raw_chunks(self) -> Iterator[bytes]:
        limit, seen = self.server.max_body_bytes, 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                seen += size
                if seen > limit:
                    self.close_connection = True  # the rest of the body is not read
                    raise _too_large(limit)
                yield self.rfile.read(size)
                self.rfile.readline(3)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            if remaining > limit:
                self.close_connection = True
                raise _too_large(limit)
            while remaining > 0:
                data = self.rfile.read(min(remaining, 1 << 20))
                if not data:
                    return
                remaining -= len(data)
                yield data

    def _body_chunks(self) -> Iterator[bytes]:
        decoder = _Decoder(self.headers.get("Content-Encoding", ""))
        limit, seen = self.server.max_body_bytes, 0
        for raw in self._raw_chunks():
            out = decoder.feed(raw)
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

    def _authenticate(self, params: dict[str, str]) -> User:
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
        expected = user.password if user else "\x00 no such user"
        if not hmac.compare_digest(given.encode(), expected.encode()) or user is None:
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
        msg = BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers.get("Content-Type", "").encode() + b"\r\n\r\n" + body
        )
        out = dict(params)
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                out[name] = part.get_payload(decode=True).decode()
        return out

    def _serve(self, readonly: bool) -> None:
        query_id = str(uuid.uuid4())
        body_iter: Iterator[bytes] | None = None
        session: _Session | None = None
        try:
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            query_id = params.get("query_id") or query_id
            user = self._authenticate(params)
            body_iter = self._body_chunks()
            if self.headers.get("Content-Type", "").lower().startswith("multipart/form-data"):
                params = self._form(params, b"".join(body_iter))
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
                rest = data + b"".join(body_iter)
                sql = statement + ("\n" + _text(rest) if rest else "")
                result = engine.execute(sql, fmt, database, settings, qparams, user, readonly)
            if session is not None:
                session.apply(result)
            self._reply(200, result.body, self._headers(query_id, result))
        except QueryError as e:
            self._drain(body_iter)
            self._reply(
                e.status,
                (str(e).rstrip() + "\n").encode(),
                {
                    "X-ClickHouse-Exception-Code": str(e.code),
                    "X-ClickHouse-Query-Id": query_id,
                    "Content-Type": "text/plain; charset=UTF-8",
                },
            )
        except (TimeoutError, ConnectionError):
            self.close_connection = True
        except Exception as e:  # a bug here must still answer as ClickHouse would, not hang
            log.exception("request failed")
            self._drain(body_iter)
            self._reply(
                500,
                f"Code: 1001. DB::Exception: {type(e).__name__}: {e}\n".encode(),
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


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _too_large(limit: int) -> QueryError:
    return QueryError(
        f"Code: 1001. DB::Exception: request body larger than {limit} bytes (DOZOR_CLICKHOUSE_MAX_BODY_MB)",
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
        if result.set_settings:
            self.settings.update(result.set_settings)
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

    def enter(self, user: User, params: dict[str, str]) -> _Session | None:
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
    """The threaded HTTP server that owns the engine."""

    daemon_threads = True
    allow_reuse_address = True
    # The stdlib default of 5 refuses connections when a few dashboards and workers start at once.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        engine: ChdbEngine,
        users: list[User],
        default_database: str = "default",
        max_body_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        super().__init__(address, _Handler)
        self.engine = engine
        self.users = {u.name: u for u in users}
        self.sessions = _Sessions()
        self.default_database = default_database
        self.max_body_bytes = max_body_bytes


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


def serve(
    data_dir: Path,
    users: list[User],
    host: str = "127.0.0.1",
    port: int = 8123,
    handles: int = 4,
    production: bool = False,
    max_body_bytes: int = 512 * 1024 * 1024,
    ready: threading.Event | None = None,
) -> None:
    """Open the engine on ``data_dir`` and serve until interrupted."""
    check_users(users, host, production)
    engine = ChdbEngine(data_dir, handles)
    server = ChdbHTTPServer((host, port), engine, users, max_body_bytes=max_body_bytes)
    log.info("ClickHouse %s (chdb) on %s serving http://%s:%d", engine.version, data_dir, host, port)
    if ready is not None:
        ready.set()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
