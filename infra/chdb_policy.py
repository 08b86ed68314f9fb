"""Who may run what on the embedded ClickHouse endpoint, decided on ClickHouse's own renderings.

Why this exists: chdb is clickhouse-local, which has no users, grants or readonly profiles and lets
any statement read the host (``file()``, ``url()``, ``INTO OUTFILE``, ``File`` tables) — so
whoever reached the port could read ``.env`` and reverse plate hashes. A real server enforces this
with users and GRANTs (``infra/clickhouse/users.sql`` creates the same two users there); here the
endpoint enforces it before the engine sees the statement, and the engine process is confined by
the operating system underneath (``infra/sandbox.py``), so a statement that gets past these rules
still cannot reach the host.

How, without a hand-written SQL parser: the engine renders each statement twice — its parse tree
(``EXPLAIN AST``) and its canonical text (``formatQuerySingleLine``; one statement only, or it
refuses) — and :func:`check` runs one rule per concern over a :class:`Statement` made of both
(:mod:`dozor.infra.chdb_sql` reads them). Each rule is a small function, tested on its own:

- :func:`rule_kind` — the statement kinds each role may run; a GET only reads, for every user;
- :func:`rule_no_host_files` — no ``INTO OUTFILE`` / ``FROM INFILE`` on any statement kind;
- :func:`rule_table_functions` — table functions only from an allow-list, wherever they stand;
- :func:`rule_host_functions` — no function that reaches the host or the network, anywhere;
- :func:`rule_engines` — local table and database engines only, no dictionaries;
- :func:`rule_system_tables` — only the ``system`` tables a client needs, and never written;
- :func:`rule_file_databases` — no name in a database that reads host files by name (the engine's
  own ``default``);
- :func:`rule_formats` — input and output formats from an allow-list (none reads a schema file);
- :func:`rule_settings_clauses` — a ``SETTINGS`` clause is refused to the reader and checked item
  by item for the writer (:mod:`dozor.infra.chdb_settings`);
- :func:`rule_reader_insert` — the reader's one write, its audit trail, as data only;
- :func:`rule_reader_databases` — the reader reads Dozor's databases only (those ``dozor migrate``
  made: they hold ``schema_migrations``), as a server's ``GRANT SELECT ON dozor.*`` allows, and
  lists nothing but their tables (no ``SHOW CLUSTERS``, ``SHOW DICTIONARIES``…).

Roles (``dozor/settings.py``: ``DOZOR_CLICKHOUSE_USER`` is the writer, ``DOZOR_CLICKHOUSE_READER_USER``
the reader): the *writer* (workers, migrations) may read, insert and change the schema of Dozor's
databases; the *reader* (the dashboard) may only read them and append to its audit log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dozor.infra.chdb_settings import SettingRefused, SettingsPolicy
from dozor.infra.chdb_sql import Node, Token, format_names, settings_clauses

__all__ = [
    "Statement",
    "check",
    "Denied",
    "READER",
    "WRITER",
    "RULES",
    "SYSTEM_TABLES",
    "SESSION_STATEMENTS",
    "RESULT_STATEMENTS",
    "AUDIT_TABLE",
    "format_allowed",
    "streamed",
    "output_format",
    "rule_kind",
    "rule_no_host_files",
    "rule_table_functions",
    "rule_host_functions",
    "rule_engines",
    "rule_system_tables",
    "rule_file_databases",
    "rule_formats",
    "rule_settings_clauses",
    "rule_reader_insert",
    "rule_reader_databases",
    "MIGRATIONS_TABLE",
]

WRITER = "writer"
READER = "reader"

#: ClickHouse's codes for these refusals, as a server answers them.
ACCESS_DENIED = 497
READONLY = 164
SYNTAX_ERROR = 62

#: Statement kinds whose reply is a result: what a GET may run, and the writer among the rest.
RESULT_STATEMENTS = frozenset(
    {"SelectWithUnionQuery", "SelectIntersectExceptQuery", "ShowTables", "DescribeQuery",
     "ExistsTableQuery", "ShowCreateTableQuery", "Explain"}
)  # fmt: skip
#: What the reader may run besides its audit append. Not EXPLAIN: its answer is not a result set
#: the endpoint can read block by block and bound (an EXPLAIN of a few kilobytes answered 130 MiB).
READER_STATEMENTS = RESULT_STATEMENTS - {"Explain"}
#: The table ``dozor migrate`` keeps in every database it made: what makes a database Dozor's.
MIGRATIONS_TABLE = "schema_migrations"
_WRITE = RESULT_STATEMENTS | {
    "InsertQuery", "CreateQuery", "AlterQuery", "DropQuery", "OptimizeQuery", "DeleteQuery",
    "RenameQuery", "TruncateQuery", "CreateSQLFunctionQuery", "DropFunctionQuery",
}  # fmt: skip
#: Handled by the endpoint itself (sessions), never sent to the engine.
SESSION_STATEMENTS = frozenset({"Set", "UseQuery"})

#: Table functions that compute, never read: anything else is refused wherever it stands.
#: (``format`` is not here: it reads its data argument as a format, and the Values format would
#: evaluate expressions in it.)
TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "values",
     "view", "null", "generaterandom"}
)  # fmt: skip
#: Functions that reach the host, the network or another process, refused anywhere in a statement
#: (as scalar functions too: ``SELECT file('/etc/passwd')`` reads the file). Table functions are
#: covered by the allow-list above; these are the names that are also scalar functions, or that
#: read external state through a name (dictionaries, models).
HOST_FUNCTIONS = frozenset(
    {"file", "url", "s3", "remote", "remotesecure", "cluster", "clusterallreplicas", "mysql",
     "postgresql", "jdbc", "odbc", "sqlite", "executable", "input", "python", "dictionary", "merge",
     "filesystem", "dictget", "dictgetordefault", "dictgetornull", "dicthas", "dictgethierarchy",
     "dictisin", "dictgetchildren", "dictgetdescendants", "dictgetall", "catboostevaluate",
     "naivebayesclassifier", "joinget", "joingetornull", "fuzzquery", "formatrow",
     "formatrownonewline", "getserversetting", "getmacro", "shardnum", "shardcount",
     # Table functions that read a path or an address, should one ever stand outside a table's
     # place; the engine's own list (Statement.table_functions) covers those added later.
     "urlcluster", "s3cluster", "gcs", "oss", "cosn", "azureblobstorage", "azureblobstoragecluster",
     "hdfs", "hdfscluster", "mongodb", "redis", "executablepool", "deltalake", "deltalakecluster",
     "deltalakelocal", "iceberg", "icebergs3", "icebergazure", "iceberglocal", "icebergs3cluster",
     "icebergazurecluster", "hudi", "hudicluster", "paimon", "paimons3", "paimonlocal", "arrowflight",
     "ytsaurus", "loop", "fuzzjson", "mergetreeindex", "mergetreeanalyzeindexes", "timeseriesdata",
     "prometheusquery", "kafka", "rabbitmq", "nats", "hive", "meilisearch",
     # Looks a table up by name, so in a database of files it opens one to read its columns.
     "hascolumnintable"}
)  # fmt: skip
#: Table and database engines a writer may create: local storage that holds its own rows. Not
#: Buffer, Merge, Distributed or any engine that names another table in its arguments: a writer's
#: ``Buffer(system, processes, …)`` lets the reader read a system table the policy refuses.
_ENGINES = re.compile(
    r"^(?:(?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite|Coalescing)?MergeTree"
    r"|Memory|Null|Log|TinyLog|StripeLog|Set|Join|Atomic|Ordinary|Lazy)$"
)
#: ``system`` tables any user may read: what clickhouse-connect, the migrations and a schema
#: browser need. Everything else there (query logs, users, processes, disks, …) is refused.
SYSTEM_TABLES = frozenset(
    {"one", "numbers", "numbers_mt", "zeros", "zeros_mt", "settings", "tables", "columns",
     "databases", "functions", "time_zones", "data_type_families", "formats", "table_engines",
     "parts", "merges", "mutations", "build_options", "contributors", "collations",
     "aggregate_function_combinators", "table_functions", "settings_changes", "merge_tree_settings"}
)  # fmt: skip
#: Data formats a statement may read or write. None of them takes a schema or template file, an
#: address or an expression: Template, Protobuf, CapnProto, Avro (a registry URL), CustomSeparated,
#: Regexp, MySQLDump and the like are refused. Values parses literals only (chdb_settings.FORCED).
_FORMATS = re.compile(
    r"^(?:Native|RowBinary\w*|TabSeparated\w*|TSV\w*|CSV\w*|JSON\w*|NDJSON|Parquet|Arrow|ArrowStream"
    r"|ORC|Pretty\w*|Vertical|Values|Null|XML|Markdown|LineAsString|RawBLOB)$",
    re.IGNORECASE,
)
#: Formats whose output is a run of independent pieces, one per block, so a result can be read
#: from the engine block by block and counted as it comes (the endpoint stops a result at its
#: bound, whatever its blocks hold — a column of one constant megabyte counts once in
#: ``max_result_bytes``). JSON, Parquet, Arrow and the like wrap the whole result and are written
#: at once; the reader gets these formats only (the dashboard reads Native).
_STREAMED_FORMATS = frozenset(
    {"native", "rowbinary", "tabseparated", "tsv", "tabseparatedraw", "tsvraw", "csv", "jsoneachrow",
     "ndjson", "jsonlines", "jsoncompacteachrow", "jsonstringseachrow", "jsoncompactstringseachrow",
     "rawblob"}
)  # fmt: skip
#: What the reader may append to its audit log in: the formats clickhouse-connect inserts in.
#: Never Values, whose rows are SQL.
_READER_INSERT_FORMATS = frozenset({"native", "rowbinary", "jsoneachrow", "jsoncompacteachrow"})

#: The one table a reader may insert into (append-only: no other statement reaches it).
AUDIT_TABLE = "audit_log"


class Denied(Exception):
    """A statement the user may not run; ``code`` is what a server answers for it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Statement:
    """One statement as the rules see it: the engine's parse tree and canonical tokens, who runs
    it, and how it arrived.

    ``insert_format`` is the format of data streamed after an ``INSERT … FORMAT`` statement (the
    endpoint's data path); None for a statement sent whole.
    """

    tree: Node
    tokens: list[Token]
    role: str
    user: str
    database: str
    readonly: bool = False
    insert_format: str | None = None
    settings: SettingsPolicy | None = field(default=None, compare=False)
    #: The engine's table functions that are not also scalar functions (``system.table_functions``
    #: minus ``system.functions``): any of them outside :data:`TABLE_FUNCTIONS` is refused wherever
    #: it appears, so a table function the engine gains in a later version is refused too.
    table_functions: frozenset[str] = field(default=frozenset(), compare=False)
    #: Databases that read host files by name (``system.databases``: engine Overlay or Filesystem —
    #: clickhouse-local's ``default`` is an Atomic database laid over the file system).
    file_databases: frozenset[str] = field(default=frozenset({"default"}), compare=False)
    #: The canonical text the tokens were read from (what the engine runs for a streamed insert).
    text: str = field(default="", compare=False)
    #: For a reader's statement: every database of the engine, and those that are Dozor's (hold
    #: :data:`MIGRATIONS_TABLE`), lower-cased. None: not known (the reader is then refused every name
    #: outside its own database).
    databases: frozenset[str] | None = field(default=None, compare=False)
    dozor_databases: frozenset[str] | None = field(default=None, compare=False)

    @property
    def kind(self) -> str:
        return self.tree.kind


def _deny(what: str, code: int = ACCESS_DENIED) -> Denied:
    name = {ACCESS_DENIED: "ACCESS_DENIED", READONLY: "READONLY"}.get(code, "NOT_IMPLEMENTED")
    return Denied(f"Code: {code}. DB::Exception: {what}. ({name})", code)


def rule_kind(s: Statement) -> None:
    """The statement kinds each role may run. A GET reads, whoever sends it (as on a server);
    the reader's audit insert is judged by :func:`rule_reader_insert`."""
    if s.kind in SESSION_STATEMENTS:
        return
    if s.readonly and s.kind not in RESULT_STATEMENTS:
        raise _deny(f"Cannot execute query in readonly mode: GET requests are read-only ({s.kind})", READONLY)
    if s.role == READER and s.kind == "InsertQuery":
        return
    allowed = _WRITE if s.role == WRITER else READER_STATEMENTS
    if s.kind not in allowed:
        if s.kind in _WRITE:
            raise _deny(
                f"Cannot execute query in readonly mode: this user may only read ({s.kind})", READONLY
            )
        raise _deny(f"{s.kind} is not allowed through this endpoint")


def rule_no_host_files(s: Statement) -> None:
    """``INTO OUTFILE`` writes a host file after any statement that returns rows (SELECT, SHOW,
    DESCRIBE, EXISTS, EXPLAIN…) and ``FROM INFILE`` reads one into an INSERT: in the parse tree
    both are a string literal directly under the statement, which nothing else is."""
    if any(c.kind == "Literal" for c in s.tree.children):
        what = "INSERT … FROM INFILE reads" if s.kind == "InsertQuery" else "INTO OUTFILE writes"
        raise _deny(f"{what} the host's files")


def _table_function_positions(root: Node) -> list[Node]:
    """Function nodes that stand where a table does: in FROM/JOIN, ``CREATE TABLE … AS f()``,
    ``INSERT INTO FUNCTION f()``."""
    found = []
    for node in root.walk():
        if node.kind in ("TableExpression", "CreateQuery", "InsertQuery"):
            found += [c for c in node.children if c.kind == "Function"]
    return found


def rule_table_functions(s: Statement) -> None:
    """Table functions only from :data:`TABLE_FUNCTIONS`, wherever they stand: in a table's place,
    and any of the engine's table functions anywhere else (``x IN deltaLakeLocal(…)``)."""
    for fn in _table_function_positions(s.tree):
        if s.kind == "InsertQuery" and fn in s.tree.children:
            raise _deny(f"INSERT INTO FUNCTION {fn.name} writes outside the database")
        if fn.name.lower() not in TABLE_FUNCTIONS:
            raise _deny(f"table function {fn.name} is not allowed through this endpoint")
    for node in s.tree.walk():
        name = node.name.lower()
        if node.kind == "Function" and name in s.table_functions and name not in TABLE_FUNCTIONS:
            raise _deny(f"table function {node.name} is not allowed through this endpoint")


def rule_host_functions(s: Statement) -> None:
    """No function of :data:`HOST_FUNCTIONS` anywhere, in any role."""
    for node in s.tree.walk():
        if node.kind == "Function" and node.name.lower() in HOST_FUNCTIONS:
            raise _deny(f"function {node.name} reaches the host or the network")


def rule_engines(s: Statement) -> None:
    """Local table and database engines only; no dictionaries (they read external sources)."""
    for node in s.tree.walk():
        if node.kind in ("Dictionary definition", "FunctionWithKeyValueArguments"):
            raise _deny("dictionaries read external sources")
        if node.kind == "Storage definition":
            engine = next((c for c in node.children if c.kind == "Function"), None)
            if engine is not None and not _ENGINES.match(engine.name):
                raise _deny(f"table engine {engine.name} reaches outside the database")


def _table(ident: str) -> tuple[str, str]:
    """``db.table`` (or ``table``) → (db, table), backquotes removed, lower-cased database."""
    parts = [p.strip('`"') for p in ident.split(".")]
    return (parts[0].lower(), parts[1]) if len(parts) > 1 else ("", parts[0])


def _readable(db: str, table: str) -> None:
    if db == "system" and table.lower() not in SYSTEM_TABLES:
        raise _deny(f"Not enough privileges: system.{table} is not readable through this endpoint")
    if db == "information_schema":
        raise _deny(f"Not enough privileges: {db}.{table} is not readable through this endpoint")


def _qualified_names(s: Statement) -> Iterator[tuple[str, str]]:
    """Every ``database.name`` of the statement, as (lower-cased database, name): from the tree,
    where bound parameters stand in place and ``x IN system.t`` is an identifier, not a table; and
    from the canonical text, which also shows what the tree leaves out (``CREATE … AS db.t``,
    ``… TO db.t``, ``ATTACH PARTITION … FROM db.t``). A column written ``alias.column`` is read
    as one too: it is checked the same way and passes unless its alias names a guarded database."""
    for node in s.tree.walk():
        if node.kind in ("TableIdentifier", "Identifier") and "." in node.name:
            yield _table(node.name)
    toks = s.tokens
    for i, t in enumerate(toks):
        if t.kind not in ("word", "ident") or (i and toks[i - 1].text == "."):
            continue
        name = t.text[1:-1] if t.kind == "ident" else t.text
        if i + 2 < len(toks) and toks[i + 1].text == "." and toks[i + 2].kind in ("word", "ident"):
            yield name.lower(), toks[i + 2].text.strip('`"')
        elif t.kind == "ident" and "." in name:
            yield _table(name)  # `system.users` in one quoted name: refused as if it were two


def rule_system_tables(s: Statement) -> None:
    """Only the ``system`` tables a client needs are read, wherever the statement names them (in
    FROM, after IN, in a clause the tree does not show); the ``system`` database is never written,
    whichever way the statement names it."""
    current = s.database.lower()
    if current == "system" and s.kind not in RESULT_STATEMENTS and s.kind not in SESSION_STATEMENTS:
        raise _deny("Not enough privileges: the system database is read-only")
    for node in s.tree.walk():
        if node.kind == "TableIdentifier":
            db, table = _table(node.name)
            _readable(db or current, table)
    for db, table in _qualified_names(s):
        _readable(db, table)
    if s.kind in _WRITE - RESULT_STATEMENTS:
        idents = [c.name.strip("`").lower() for c in s.tree.children if c.kind == "Identifier"]
        if idents and idents[0] == "system" and (len(idents) > 1 or s.kind == "InsertQuery"):
            raise _deny("Not enough privileges: the system database is read-only")
        if s.kind == "InsertQuery" and len(idents) >= 2:
            _readable(idents[0], idents[1])
        # What the tree does not show: a view's target (`CREATE MATERIALIZED VIEW … TO system.t`),
        # a partition's destination (`MOVE PARTITION … TO TABLE system.t`).
        toks = s.tokens
        for i, t in enumerate(toks):
            if t.keyword == "TO":
                j = i + 2 if i + 1 < len(toks) and toks[i + 1].keyword == "TABLE" else i + 1
                if j < len(toks) and toks[j].text.strip('`"').lower() == "system":
                    raise _deny("Not enough privileges: the system database is read-only")


def rule_file_databases(s: Statement) -> None:
    """No name in a database that reads host files by name.

    clickhouse-local's ``default`` database is an Atomic database laid over the file system: a name
    it does not hold is opened as a file (``SELECT * FROM default.`/etc/passwd```, ``x IN
    default.`../.env```). The endpoint runs unqualified names in a database of its own
    (``chdb_http.SHADOW_DATABASE``), so only a name qualified with such a database reaches it, and
    that is refused wherever it stands; so is naming the database itself (``SHOW TABLES FROM
    default``, ``DROP DATABASE default``)."""
    if s.kind in SESSION_STATEMENTS or not s.file_databases:
        return
    for db, table in _qualified_names(s):
        if db in s.file_databases:
            raise _deny(
                f"Not enough privileges: {db}.{table}: the engine's {db} database opens host files by "
                "name; use a database of your own"
            )
    for c in s.tree.children:
        if c.kind == "Identifier" and c.name.strip('`"').lower() in s.file_databases:
            raise _deny(f"Not enough privileges: the engine's {c.name} database opens host files by name")


def format_allowed(name: str) -> bool:
    """Whether a data format may be read or written through this endpoint."""
    return bool(_FORMATS.match(name))


def streamed(name: str) -> bool:
    """Whether a result in format ``name`` can be read from the engine block by block."""
    return name.lower() in _STREAMED_FORMATS


def output_format(s: Statement, requested: str) -> str:
    """The format the engine answers ``s`` in: its own FORMAT clause, else the requested one."""
    names = format_names(s.tokens)
    return names[-1] if names and s.kind != "InsertQuery" else requested


def rule_formats(s: Statement) -> None:
    """Every ``FORMAT`` of the statement (and of its streamed data) from the allow-list."""
    names = format_names(s.tokens) + ([s.insert_format] if s.insert_format else [])
    for name in names:
        if not format_allowed(name):
            raise _deny(f"format {name} is not allowed through this endpoint (it reads a schema, a "
                        "template or an address)")  # fmt: skip


def _set_nodes(root: Node) -> int:
    """Set nodes that stand for a SETTINGS clause: not the SET statement itself, not the options
    of an EXPLAIN (``EXPLAIN PIPELINE graph = 1``)."""
    n = sum(1 for node in root.walk() if node.kind == "Set" and node is not root)
    if root.kind == "Explain" and root.children and root.children[0].kind == "Set":
        n -= 1
    return n


def rule_settings_clauses(s: Statement) -> None:
    """A reader sends settings as URL parameters, never in the statement. A writer's SETTINGS
    clauses are read from the canonical text — one for each ``Set`` node of the tree, or the
    statement is refused — and every item is checked like a URL setting."""
    expected = _set_nodes(s.tree)
    if expected and s.role == READER:
        raise _deny("a reader sends settings as URL parameters, not in a SETTINGS clause", READONLY)
    clauses = settings_clauses(s.tokens)
    if len(clauses) != expected:
        raise _deny(f"could not read the statement's SETTINGS clauses ({len(clauses)} of {expected})")
    if s.settings is None:
        return
    for items in clauses:
        for item in items:
            try:
                s.settings.check_clause_item(item.name, item.value, s.role, s.user)
            except SettingRefused as e:
                raise Denied(str(e), e.code) from None


def rule_reader_insert(s: Statement) -> None:
    """The reader's only write: ``INSERT INTO [db.]audit_log (cols) FORMAT <data format>`` with its
    rows streamed after the statement — no SELECT, no VALUES, no table function."""
    if s.role != READER or s.kind != "InsertQuery":
        return
    kinds = [c.kind for c in s.tree.children]
    idents = [c.name.strip("`") for c in s.tree.children if c.kind == "Identifier"]
    ok = (
        s.insert_format is not None
        and s.insert_format.lower() in _READER_INSERT_FORMATS
        and bool(idents)
        and idents[-1] == AUDIT_TABLE
        and all(k in ("Identifier", "ExpressionList") for k in kinds)
    )
    if not ok:
        raise _deny(
            "Cannot execute query in readonly mode: this user may only read, and append rows to "
            f"{AUDIT_TABLE} as data (Native, RowBinary or JSON)",
            READONLY,
        )


def _dozor_db(s: Statement, db: str) -> bool:
    return s.dozor_databases is not None and db.lower() in s.dozor_databases


def rule_reader_databases(s: Statement) -> None:
    """The reader reads Dozor's databases and the ``system`` tables a client needs, nothing else.

    On a server the reader's grant is ``SELECT ON dozor.*``; here every database the writer makes
    shares one engine, so the reader's names are checked: its request's database, every table it
    reads (``FROM``, ``JOIN``, ``IN db.t``, bound identifiers) and its audit insert's table must be
    in a database ``dozor migrate`` made. A dotted name whose first part is no database at all is a
    column of an alias (``r.city``) and passes. Of the ``SHOW`` statements it may run ``SHOW
    TABLES`` only (``SHOW CLUSTERS``, ``SHOW DICTIONARIES``… read other system tables)."""
    if s.role != READER or s.kind in SESSION_STATEMENTS:
        return
    if s.kind == "ShowTables":
        words = [t.keyword for t in s.tokens[1:4]]
        other = ("CLUSTERS", "CLUSTER", "DICTIONARIES", "DATABASES", "CACHES", "FILESYSTEM", "SETTINGS")
        if "TABLES" not in words or any(w in other for w in words):
            raise _deny("Not enough privileges: the reader may list Dozor's tables only")
    known = s.databases or frozenset()

    def check(db: str, table: str, table_place: bool) -> None:
        if db in ("system", "information_schema"):
            return  # the system rules' to judge
        if db == "":
            if not table_place or s.database.lower() in ("system", "information_schema"):
                return
            db = s.database  # an unqualified table is in the request's database
        if _dozor_db(s, db):
            return
        if table_place or db.lower() in known:
            raise _deny(f"Not enough privileges: {db}.{table} is not in a Dozor database")

    for node in s.tree.walk():
        if node.kind == "TableIdentifier":
            db, table = _table(node.name)
            check(db, table, True)
    for db, table in _qualified_names(s):
        check(db, table, False)
    if s.kind == "ShowTables":
        named = [
            s.tokens[i + 1].text.strip('`"')
            for i, t in enumerate(s.tokens[:-1])
            if t.keyword in ("FROM", "IN")
        ]
        for name in named or [s.database]:
            if not _dozor_db(s, name):
                raise _deny(f"Not enough privileges: {name} is not a Dozor database")
    if s.kind == "InsertQuery":
        idents = [c.name.strip('`"') for c in s.tree.children if c.kind == "Identifier"]
        where = idents[-2] if len(idents) >= 2 else s.database
        if idents and not _dozor_db(s, where):
            raise _deny(f"Not enough privileges: {where}.{idents[-1]} is not in a Dozor database")


#: Every rule, in the order they run; a statement must pass them all.
RULES: tuple[Callable[[Statement], None], ...] = (
    rule_kind,
    rule_reader_insert,
    rule_no_host_files,
    rule_table_functions,
    rule_host_functions,
    rule_engines,
    rule_system_tables,
    rule_file_databases,
    rule_formats,
    rule_settings_clauses,
    rule_reader_databases,
)


def check(statement: Statement) -> None:
    """Refuse ``statement`` unless every rule of :data:`RULES` allows it (raises :class:`Denied`)."""
    for rule in RULES:
        rule(statement)
