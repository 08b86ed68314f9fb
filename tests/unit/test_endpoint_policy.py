"""The endpoint's policy, one rule at a time, on the engine's own renderings of statements.

The parse trees below are what chdb 26.9 prints for ``EXPLAIN AST`` of each statement and the
texts what ``formatQuerySingleLine`` prints (the integration tests in
tests/integration/test_endpoint_security.py send the same attacks to a running endpoint).
"""

from __future__ import annotations

import pytest

from dozor.infra.chdb_policy import (
    READER,
    WRITER,
    Denied,
    Statement,
    check,
    rule_file_databases,
    rule_formats,
    rule_host_functions,
    rule_kind,
    rule_no_host_files,
    rule_reader_insert,
    rule_settings_clauses,
    rule_system_tables,
    rule_table_functions,
)
from dozor.infra.chdb_settings import FORCED, READER_SETTINGS, SettingRefused, SettingsPolicy, literal
from dozor.infra.chdb_sql import Unreadable, format_names, parse_ast, set_statement, settings_clauses, tokens

POLICY = SettingsPolicy(
    types={
        "max_threads": "MaxThreads", "max_execution_time": "Seconds", "format_template_row": "String",
        "format_schema": "String", "additional_result_filter": "String",
        "additional_table_filters": "Map", "insert_deduplication_token": "String",
        "log_comment": "String", "join_use_nulls": "Bool", "date_time_input_format": "DateTimeInputFormat",
        "readonly": "UInt64", "os_thread_priority": "Int32", "format_avro_schema_registry_url": "URI",
        "max_partitions_per_insert_block": "UInt64", **{k: "Bool" for k in FORCED},
        **{k: "Bool" for k in READER_SETTINGS if k != "date_time_input_format"},
    },
    table_types={
        "disk": "String", "storage_policy": "String", "non_replicated_deduplication_window": "UInt64",
    },
)  # fmt: skip


def stmt(ast: str, text: str, role: str = WRITER, **kw) -> Statement:
    # The engine: Dozor's database, and one the writer made for something else.
    kw.setdefault("databases", frozenset({"dozor", "system", "odb"}))
    kw.setdefault("dozor_databases", frozenset({"dozor"}))
    return Statement(
        tree=parse_ast(ast),
        tokens=tokens(text),
        role=role,
        user=role,
        database="dozor",
        settings=POLICY,
        **kw,
    )


SELECT_T = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier t
"""


# --- reading the engine's renderings ------------------------------------------------------------------


def test_keywords_are_read_from_the_canonical_text_never_from_inside_strings_or_names():
    text = "SELECT 'SETTINGS x = 1 FORMAT Template' AS s FROM system.settings SETTINGS max_threads = 1"
    assert [[(i.name, i.value) for i in c] for c in settings_clauses(tokens(text))] == [
        [("max_threads", "1")]
    ]
    assert format_names(tokens(text)) == []
    assert format_names(tokens("SELECT format('{}', 1) FORMAT JSONEachRow")) == ["JSONEachRow"]


def test_a_settings_value_is_one_literal_or_nothing():
    text = "ALTER TABLE t (MODIFY SETTING disk = disk(type = 'local', path = '/tmp/ev/'))"
    (clause,) = settings_clauses(tokens(text))
    assert [(i.name, i.value) for i in clause] == [("disk", None)]
    text = "INSERT INTO t SETTINGS insert_deduplication_token = 'a\\'b', x = -3 SELECT 1"
    (clause,) = settings_clauses(tokens(text))
    assert [(i.name, i.value) for i in clause] == [("insert_deduplication_token", "a'b"), ("x", "-3")]


def test_set_statements_are_read_item_by_item_and_default_is_not_a_value():
    items = set_statement(tokens("SET max_threads = DEFAULT, log_comment = 'default', x = 1"))
    assert [(i.name, i.value, i.default) for i in items] == [
        ("max_threads", None, True), ("log_comment", "default", False), ("x", "1", False),
    ]  # fmt: skip
    assert [i.value for i in set_statement(tokens("SET a = 1 b"))] == [None]  # not one literal
    with pytest.raises(Unreadable):
        set_statement(tokens("SET = 1"))
    with pytest.raises(Unreadable):
        tokens("SELECT 'unterminated")


@pytest.mark.parametrize(
    "value",
    ["1", "1', max_execution_time = 0, max_memory_usage = '0", "a\\', x = 1 --", "\\", "'\n, x = 1", "\0"],
)
def test_a_value_is_always_one_string_literal(value):
    # Whatever the client sent, the literal reads back as exactly one string with that value.
    (token,) = tokens(literal(value))
    assert token.kind == "string"
    from dozor.infra.chdb_sql import unquote

    assert unquote(token) == value


# --- one rule per concern ----------------------------------------------------------------------------


def test_a_get_only_reads_for_every_user_the_audit_log_included():
    insert = (
        "InsertQuery   (children 2)\n Identifier audit_log\n ExpressionList (children 1)\n  Identifier user\n"
    )
    for role in (READER, WRITER):
        with pytest.raises(Denied, match="GET requests are read-only") as e:
            rule_kind(stmt(insert, "INSERT INTO audit_log (user) FORMAT Native", role, readonly=True))
        assert e.value.code == 164


@pytest.mark.parametrize(
    "ast",
    [
        "ShowTables (children 2)\n Identifier system\n Literal '/tmp/x1'\n",
        "DescribeQuery (children 2)\n TableExpression (children 1)\n  TableIdentifier system.one\n"
        " Literal '/x'\n",
        "ExistsTableQuery system one (children 3)\n Identifier system\n Identifier one\n Literal '/x'\n",
        "Explain EXPLAIN SYNTAX (children 2)\n SelectWithUnionQuery (children 1)\n"
        "  ExpressionList (children 1)\n   SelectQuery (children 1)\n    ExpressionList (children 1)\n"
        "     Literal UInt64_1\n Literal '/tmp/x4'\n",
        SELECT_T + " Literal 'b'\n",
        "InsertQuery   (children 2)\n Literal '/etc/passwd'\n Identifier t\n",
    ],
    ids=["show", "describe", "exists", "explain", "select", "from-infile"],
)
def test_no_statement_kind_writes_or_reads_a_host_file(ast):
    with pytest.raises(Denied, match="host's files"):
        rule_no_host_files(stmt(ast, "SELECT 1"))


@pytest.mark.parametrize(
    "ast",
    [
        "CreateQuery y (children 2)\n Identifier y\n Function deltaLakeLocal (children 1)\n"
        "  ExpressionList (children 1)\n   Literal '/tmp'\n",
        SELECT_T.replace("TableIdentifier t", "Function format (children 1)"),
        "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n"
        "   Function in (children 1)\n    ExpressionList (children 2)\n     Identifier a\n"
        "     Function icebergLocal (children 1)\n",
    ],
    ids=["create-as", "format-in-from", "in-operand"],
)
def test_table_functions_that_read_are_refused_wherever_they_stand(ast):
    s = stmt(ast, "SELECT 1", table_functions=frozenset({"deltalakelocal", "iceberglocal", "format"}))
    with pytest.raises(Denied, match="table function"):
        rule_table_functions(s)


def test_host_functions_are_refused_anywhere_and_computing_ones_pass():
    deep = SELECT_T + "   Function lower (children 1)\n    Function file (children 1)\n"
    with pytest.raises(Denied, match="function file"):
        rule_host_functions(stmt(deep, "SELECT 1"))
    rule_host_functions(stmt(SELECT_T + "   Function format (children 1)\n", "SELECT 1"))  # string format()
    rule_table_functions(stmt(SELECT_T.replace("TableIdentifier t", "Function numbers (children 1)"), "S"))


def test_system_tables_beyond_a_clients_needs_are_refused():
    for table in ("system.users", "system.query_log", "system.processes", "system.disks", "SYSTEM.users"):
        with pytest.raises(Denied, match="Not enough privileges"):
            rule_system_tables(stmt(SELECT_T.replace("TableIdentifier t", f"TableIdentifier {table}"), "S"))
    rule_system_tables(stmt(SELECT_T.replace("TableIdentifier t", "TableIdentifier system.tables"), "S"))


@pytest.mark.parametrize("fmt", ["Template", "Protobuf", "ProtobufSingle", "CapnProto", "Avro", "Regexp"])
def test_formats_that_read_a_schema_or_template_are_refused(fmt):
    with pytest.raises(Denied, match=f"format {fmt}"):
        rule_formats(stmt(SELECT_T, f"SELECT * FROM t FORMAT {fmt}"))
    with pytest.raises(Denied, match=f"format {fmt}"):
        rule_formats(stmt(SELECT_T, "INSERT INTO t", insert_format=fmt))
    rule_formats(stmt(SELECT_T, "SELECT * FROM t FORMAT JSONEachRow"))


def test_settings_clauses_reader_none_writer_item_by_item():
    ast = SELECT_T + "   Set\n"
    with pytest.raises(Denied) as e:
        rule_settings_clauses(stmt(ast, "SELECT * FROM t SETTINGS max_threads = 1", READER))
    assert e.value.code == 164
    rule_settings_clauses(stmt(ast, "SELECT * FROM t SETTINGS max_threads = 1"))
    for text in (
        "SELECT * FROM t SETTINGS max_threads = 1, format_template_row = '/etc/hostname'",
        "SELECT * FROM t SETTINGS input_format_values_interpret_expressions = 1",
        "SELECT * FROM t SETTINGS additional_result_filter = 'a = 1'",
        "SELECT * FROM t SETTINGS os_thread_priority = -20",
    ):
        with pytest.raises(Denied):
            rule_settings_clauses(stmt(ast, text))
    # A Set node the text does not account for: refused, whatever it hides.
    with pytest.raises(Denied, match="could not read"):
        rule_settings_clauses(stmt(ast + "   Set\n", "SELECT * FROM t SETTINGS max_threads = 1"))


def test_table_settings_that_name_a_disk_or_a_policy_are_refused():
    ast = (
        "CreateQuery x (children 2)\n Identifier x\n Storage definition (children 2)\n"
        "  Function MergeTree\n  Set\n"
    )
    rule_settings_clauses(
        stmt(ast, "CREATE TABLE x ENGINE = MergeTree SETTINGS non_replicated_deduplication_window = 5")
    )
    for text in (
        "CREATE TABLE x ENGINE = MergeTree SETTINGS disk = disk(type = 'local', path = '/tmp/evil/')",
        "CREATE TABLE x ENGINE = MergeTree SETTINGS storage_policy = 'default'",
    ):
        with pytest.raises(Denied):
            rule_settings_clauses(stmt(ast, text))


def test_the_readers_one_write_is_its_audit_log_as_data():
    ast = (
        "InsertQuery   (children 3)\n Identifier dozor\n Identifier audit_log\n ExpressionList (children 1)\n"
    )
    rule_reader_insert(stmt(ast, "INSERT", READER, insert_format="Native"))
    for fmt in (None, "Values", "CSV", "Template"):
        with pytest.raises(Denied):
            rule_reader_insert(stmt(ast, "INSERT", READER, insert_format=fmt))
    with pytest.raises(Denied):
        rule_reader_insert(
            stmt(ast.replace("audit_log", "violations"), "INSERT", READER, insert_format="Native")
        )


def test_check_runs_every_rule():
    check(stmt(SELECT_T, "SELECT * FROM t", READER))
    with pytest.raises(Denied):
        check(stmt(SELECT_T + " Literal '/tmp/out'\n", "SELECT * FROM t INTO OUTFILE '/tmp/out'", READER))


# --- settings by URL ---------------------------------------------------------------------------------


def test_the_reader_may_set_only_its_exact_list():
    for name in READER_SETTINGS:
        POLICY.check(name, READER, "r")
    for name in ("max_threads", "max_execution_time", "format_template_row", "additional_result_filter",
                 "readonly", "os_thread_priority", *FORCED):  # fmt: skip
        with pytest.raises(SettingRefused) as e:
            POLICY.check(name, READER, "r")
        assert e.value.code == 164


def test_the_writer_may_not_set_free_text_or_fixed_settings():
    POLICY.check("max_threads", WRITER, "w")
    POLICY.check("insert_deduplication_token", WRITER, "w")
    for name in ("format_template_row", "format_schema", "additional_result_filter",
                 "additional_table_filters", "format_avro_schema_registry_url", "readonly",
                 "os_thread_priority", *FORCED):  # fmt: skip
        with pytest.raises(SettingRefused):
            POLICY.check(name, WRITER, "w")
    with pytest.raises(SettingRefused) as e:
        POLICY.check("no_such_setting", WRITER, "w")
    assert e.value.code == 115


# --- names: files and system tables by any spelling ------------------------------------------------

IN_IDENT = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Function in (children 1)
     ExpressionList (children 2)
      Literal 'x'
      Identifier {name}
"""
FROM_IDENT = SELECT_T.replace("TableIdentifier t", "TableIdentifier {name}")


@pytest.mark.parametrize(
    ("ast", "text"),
    [
        (FROM_IDENT.format(name="default./etc/passwd"), "SELECT * FROM default.`/etc/passwd`"),
        (FROM_IDENT.format(name="default.../x"), "SELECT * FROM `default`.`../x`"),
        (IN_IDENT.format(name="default./etc/passwd"), "SELECT 'x' IN (default.`/etc/passwd`)"),
        # the tree shows a bound parameter in place; the text keeps the placeholder
        (FROM_IDENT.format(name="default./etc/passwd"), "SELECT * FROM {d:Identifier}.{t:Identifier}"),
        # what the tree leaves out, the text shows
        (
            "CreateQuery dz v (children 2)\n Identifier dz\n Identifier v\n",
            "CREATE TABLE dz.v AS default.`/etc/passwd`",
        ),
        ("ShowTables (children 1)\n Identifier default\n", "SHOW TABLES FROM default"),
    ],
)
def test_a_name_in_a_database_of_files_is_refused(ast, text):
    for role in (READER, WRITER):
        with pytest.raises(Denied):
            rule_file_databases(stmt(ast, text, role))


def test_names_elsewhere_pass_the_file_rule():
    ok = stmt(FROM_IDENT.format(name="dz.t"), "SELECT * FROM dz.t")
    rule_file_databases(ok)
    rule_file_databases(stmt(IN_IDENT.format(name="t.default"), "SELECT 'x' IN (t.default)"))
    # a database of files other than `default` is found by its engine, not its name
    with pytest.raises(Denied):
        rule_file_databases(
            stmt(
                FROM_IDENT.format(name="files.x"),
                "SELECT * FROM files.x",
                file_databases=frozenset({"files"}),
            )  # fmt: skip
        )


@pytest.mark.parametrize(
    ("ast", "text"),
    [
        (IN_IDENT.format(name="system.keywords"), "SELECT 'x' IN (system.keywords)"),
        (IN_IDENT.format(name="system.users"), "SELECT 'x' IN ({d:Identifier}.{t:Identifier})"),
        (IN_IDENT.format(name="x"), "SELECT 'x' IN (`system`.`users`)"),
        (FROM_IDENT.format(name="system.users"), "SELECT * FROM `system.users`"),
        (
            "CreateQuery dz mv (children 2)\n Identifier dz\n Identifier mv\n",
            "CREATE MATERIALIZED VIEW dz.mv TO system.one AS SELECT 1 AS dummy",
        ),
    ],
)
def test_a_refused_system_table_is_refused_by_any_name(ast, text):
    with pytest.raises(Denied):
        rule_system_tables(stmt(ast, text, READER if "CREATE" not in text else WRITER))


def test_an_engine_that_names_another_table_is_refused():
    ast = (
        "CreateQuery dz b (children 3)\n Identifier dz\n Identifier b\n Storage definition (children 1)\n"
        "  Function Buffer (children 1)\n   ExpressionList (children 2)\n    Identifier system\n"
        "    Identifier processes\n"
    )
    with pytest.raises(Denied, match="Buffer"):
        check(stmt(ast, "CREATE TABLE dz.b (a String) ENGINE = Buffer(system, processes)"))
