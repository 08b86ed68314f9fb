"""Who may run what on the embedded ClickHouse endpoint, decided on ClickHouse's own parse tree.

Why this exists: chdb is clickhouse-local, which has no users, grants or readonly profiles and lets
any statement read the host (``file()``, ``url()``, ``INTO OUTFILE``, ``File`` tables) — so
whoever reached the port could read ``.env`` and reverse plate hashes. A real server enforces this
with users and GRANTs (``infra/clickhouse/users.sql`` creates the same two users there); here the
endpoint enforces it before the engine sees the statement.

How, without a hand-written SQL parser:

1. ``formatQuerySingleLine({q:String})`` — ClickHouse's parser as a function — refuses a text of
   more than one statement (chdb would otherwise run ``SELECT 1; SELECT file(…)`` in full, and an
   ``EXPLAIN`` of it would run the second statement);
2. ``EXPLAIN AST <statement>`` gives the parse tree, read here into :class:`Node`;
3. :func:`check` walks it: the statement kind must be one the user's role may run, every table
   function must be on an allow-list, no function that reaches the host or the network may appear
   anywhere, table engines must be local ones, ``system`` tables only those a client needs.

Roles (``dozor/settings.py``: ``DOZOR_CLICKHOUSE_USER`` is the writer, ``DOZOR_CLICKHOUSE_READER_USER``
the reader): the *writer* (workers, migrations) may read, insert and change the schema of Dozor's
databases; the *reader* (the dashboard) may only read them, may change only output settings, and
runs under time and memory limits it cannot raise. Neither may touch the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "Node",
    "parse_ast",
    "check",
    "Denied",
    "READER",
    "WRITER",
    "READER_SETTINGS",
    "READER_LIMITS",
    "SYSTEM_TABLES",
    "SESSION_STATEMENTS",
    "set_items",
]

WRITER = "writer"
READER = "reader"

#: ClickHouse's codes for these refusals, as a server answers them.
ACCESS_DENIED = 497
READONLY = 164
NOT_IMPLEMENTED = 48

#: Statement kinds (the root of EXPLAIN AST) each role may run.
_READ = frozenset(
    {"SelectWithUnionQuery", "SelectIntersectExceptQuery", "ShowTables", "DescribeQuery",
     "ExistsTableQuery", "ShowCreateTableQuery", "Explain"}
)  # fmt: skip
_WRITE = _READ | {
    "InsertQuery", "CreateQuery", "AlterQuery", "DropQuery", "OptimizeQuery", "DeleteQuery",
    "RenameQuery", "TruncateQuery", "CreateSQLFunctionQuery", "DropFunctionQuery",
}  # fmt: skip
#: Handled by the endpoint itself (sessions), never sent to the engine.
SESSION_STATEMENTS = frozenset({"Set", "UseQuery"})

#: Table functions that compute, never read: anything else in FROM is refused.
_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "values",
     "view", "null", "generaterandom", "format"}
)  # fmt: skip
#: Functions that reach the host, the network or another process, refused anywhere in a statement
#: (as scalar functions too: ``SELECT file('/etc/passwd')`` reads the file).
_HOST_FUNCTIONS = frozenset(
    {"file", "url", "urlcluster", "s3", "s3cluster", "gcs", "oss", "cosn", "azureblobstorage",
     "azureblobstoragecluster", "hdfs", "hdfscluster", "remote", "remotesecure", "cluster",
     "clusterallreplicas", "mysql", "postgresql", "jdbc", "odbc", "sqlite", "mongodb", "redis",
     "executable", "executablepool", "input", "python", "deltalake", "deltalakecluster", "iceberg",
     "icebergs3", "icebergazure", "icebergs3cluster", "icebergazurecluster", "hudi", "hudicluster",
     "arrowflight", "ytsaurus", "dictionary", "merge", "filesystem", "loop", "fuzzjson",
     "fuzzquery", "mergetreeindex", "mergetreeanalyzeindexes", "timeseriesdata", "prometheusquery",
     "paimon", "paimons3", "kafka", "rabbitmq", "nats", "hive", "meilisearch", "dictget"}
)  # fmt: skip
#: Table engines a writer may create: local storage only.
_ENGINES = re.compile(
    r"^(?:(?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite|Coalescing)?MergeTree"
    r"|Memory|Null|Log|TinyLog|StripeLog|Set|Join|Buffer|Atomic|Ordinary|Lazy)$"
)
#: ``system`` tables any user may read: what clickhouse-connect, the migrations and a schema
#: browser need. Everything else there (query logs, users, processes, disks, …) is refused.
SYSTEM_TABLES = frozenset(
    {"one", "numbers", "numbers_mt", "zeros", "zeros_mt", "settings", "tables", "columns",
     "databases", "functions", "time_zones", "data_type_families", "formats", "table_engines",
     "parts", "merges", "mutations", "build_options", "contributors", "collations",
     "aggregate_function_combinators", "table_functions", "settings_changes"}
)  # fmt: skip
#: Settings a reader may send: how results are written, never limits or behaviour of the engine.
#: clickhouse-connect's own per-request settings are among them.
READER_SETTINGS = re.compile(
    r"^(?:output_format_\w+|date_time_output_format|date_time_input_format|session_timezone"
    r"|cast_string_to_dynamic_use_inference|send_progress_in_http_headers"
    r"|http_headers_progress_interval_ms|wait_end_of_query|cancel_http_readonly_queries_on_client_close"
    r"|max_query_size|join_use_nulls|use_client_time_zone|format_\w+|optimize_\w+"
    r"|enable_analyzer|allow_experimental_\w+_type|output_format_json_quote_\w+)$"
)
#: Applied to every reader request, above whatever it asked for: a reader cannot raise them.
READER_LIMITS = {"max_execution_time": "30", "max_memory_usage": str(2 * 1024**3), "max_threads": "2"}


class Denied(Exception):
    """A statement the user may not run; ``code`` is what a server answers for it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Node:
    """One line of ``EXPLAIN AST``: its kind (``Function``, ``TableIdentifier``…), the words after
    it, and its children."""

    kind: str
    args: list[str]
    children: list[Node] = field(default_factory=list)

    def walk(self):  # noqa: ANN201 - a generator of Node
        yield self
        for c in self.children:
            yield from c.walk()

    @property
    def name(self) -> str:
        return self.args[0] if self.args else ""


_SUFFIX = re.compile(r"\s*\((?:children \d+|alias [^)]*)\)")


def parse_ast(text: str) -> Node:
    """Read ``EXPLAIN AST`` output (one node a line, indented one space a level) into a tree."""
    root: Node | None = None
    stack: list[tuple[int, Node]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        words = _SUFFIX.sub("", line.strip()).split()
        # Kinds of two words ("Storage definition", "Columns definition", "SYSTEM query"…).
        if len(words) > 1 and words[1] in ("definition", "query", "lifetime", "layout", "range"):
            words = [f"{words[0]} {words[1]}", *words[2:]]
        node = Node(words[0], words[1:])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif root is None:
            root = node
        else:
            raise Denied("Code: 62. DB::Exception: more than one statement. (SYNTAX_ERROR)", 62)
        stack.append((depth, node))
    if root is None:
        raise Denied("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)", 62)
    return root


def _deny(what: str, code: int = ACCESS_DENIED) -> Denied:
    name = "ACCESS_DENIED" if code == ACCESS_DENIED else "READONLY" if code == READONLY else "NOT_IMPLEMENTED"
    return Denied(f"Code: {code}. DB::Exception: {what}. ({name})", code)


def _table(ident: str) -> tuple[str, str]:
    """``db.table`` (or ``table``) → (db, table), backquotes removed, lower-cased database."""
    parts = [p.strip('`"') for p in ident.split(".")]
    return (parts[0].lower(), parts[1]) if len(parts) > 1 else ("", parts[0])


def _check_database(db: str, table: str) -> None:
    if db == "system" and table.lower() not in SYSTEM_TABLES:
        raise _deny(f"Not enough privileges: system.{table} is not readable through this endpoint")
    if db in ("information_schema",):
        raise _deny(f"Not enough privileges: {db}.{table} is not readable through this endpoint")


def check(root: Node, role: str, database: str, readonly: bool = False) -> None:
    """Refuse what ``role`` may not run (see the module docstring); ``database`` is the current one.

    ``readonly`` narrows any role to reading (an HTTP GET, as on a server).
    """
    kind = root.kind
    allowed = _WRITE if role == WRITER and not readonly else _READ
    if kind in SESSION_STATEMENTS:
        return  # the endpoint handles SET and USE itself (sessions); the caller checks their names
    if role == READER and kind == "InsertQuery" and _is_audit_insert(root):
        return  # the dashboard's one write: its audit trail, append-only
    if kind not in allowed:
        if kind in _WRITE:
            who = "GET requests are read-only" if readonly and role == WRITER else "this user may only read"
            raise _deny(f"Cannot execute query in readonly mode: {who} ({kind})", READONLY)
        raise _deny(f"{kind} is not allowed through this endpoint")
    if database.lower() == "system" and kind != "SelectWithUnionQuery":
        raise _deny("Not enough privileges: the system database is read-only")
    if kind == "InsertQuery":
        first = root.children[0] if root.children else None
        if first is not None and first.kind == "Literal":
            raise _deny("INSERT … FROM INFILE reads the host's files")
        if first is not None and first.kind == "Function":
            raise _deny(f"INSERT INTO FUNCTION {first.name} writes outside the database")
        idents = [c.name for c in root.children if c.kind == "Identifier"]
        if len(idents) >= 2:
            _check_database(idents[0].lower(), idents[1])
            if idents[0].lower() == "system":
                raise _deny("Not enough privileges: the system database is read-only")
    if kind in ("SelectWithUnionQuery", "SelectIntersectExceptQuery") and any(
        c.kind == "Literal" for c in root.children
    ):
        raise _deny("SELECT … INTO OUTFILE writes the host's files")
    if kind in ("CreateQuery", "AlterQuery", "DropQuery", "OptimizeQuery", "DeleteQuery", "RenameQuery"):
        dbs = [c.name.lower() for c in root.children if c.kind == "Identifier"][:1]
        if dbs and dbs[0] == "system" and len(root.args) > 1:
            raise _deny("Not enough privileges: the system database is read-only")
    for node in root.walk():
        if node.kind in ("Dictionary definition", "FunctionWithKeyValueArguments"):
            raise _deny("dictionaries read external sources")
        if node.kind == "Storage definition":
            engine = next((c for c in node.children if c.kind == "Function"), None)
            if engine is not None and not _ENGINES.match(engine.name):
                raise _deny(f"table engine {engine.name} reaches outside the database")
        if node.kind == "TableExpression":
            for c in node.children:
                if c.kind == "Function" and c.name.lower() not in _TABLE_FUNCTIONS:
                    raise _deny(f"table function {c.name} is not allowed through this endpoint")
                if c.kind == "TableIdentifier":
                    db, table = _table(c.name)
                    _check_database(db or database.lower(), table)
        if node.kind == "Function" and node.name.lower() in _HOST_FUNCTIONS:
            raise _deny(f"function {node.name} reaches the host or the network")
        if node.kind == "Set" and role == READER and node is not root:
            raise _deny("a reader sends settings as URL parameters, not in a SETTINGS clause", READONLY)


#: The one table a reader may insert into (append-only: no other statement reaches it).
AUDIT_TABLE = "audit_log"


def _is_audit_insert(root: Node) -> bool:
    """``INSERT INTO [db.]audit_log (…) FORMAT …`` with data, and nothing else (no SELECT, no
    INFILE, no table function)."""
    kinds = [c.kind for c in root.children]
    idents = [c.name.strip("`") for c in root.children if c.kind == "Identifier"]
    return (
        bool(idents)
        and idents[-1] == AUDIT_TABLE
        and all(k in ("Identifier", "ExpressionList") for k in kinds)
    )


_SET_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|[^,]+?)\s*(?:,|$)")


def set_items(formatted: str) -> dict[str, str]:
    """The settings of a canonical ``SET a = 1, b = 'x'`` (formatQuerySingleLine's form) as
    name → literal text."""
    body = formatted.strip()
    if not body.upper().startswith("SET "):
        raise Denied("Code: 62. DB::Exception: not a SET statement. (SYNTAX_ERROR)", 62)
    rest, out, pos = body[4:], {}, 0
    while pos < len(rest):
        m = _SET_ITEM.match(rest, pos)
        if m is None:
            raise Denied(
                f"Code: 62. DB::Exception: cannot read SET at {rest[pos : pos + 40]!r}. (SYNTAX_ERROR)", 62
            )
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out
