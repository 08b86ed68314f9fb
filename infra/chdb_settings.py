"""Which ClickHouse settings a request may change on the embedded endpoint, and how values reach
the engine.

A setting is not a harmless knob: some name files (``format_template_row``, ``format_schema``,
``output_format_schema``), some hold SQL (``additional_result_filter``, ``additional_table_filters``),
some reach the network (``format_avro_schema_registry_url``), some turn data back into code
(``input_format_values_interpret_expressions``), some lift limits. The rules, by class rather
than by name:

- **Free text is refused.** A setting whose type is free text (``String``, ``Map``, ``URI`` — the
  engine's own ``system.settings`` and ``system.merge_tree_settings`` say which) can carry a path,
  SQL or a URL; only the few named in :data:`FREE_TEXT_ALLOWED` are accepted, for the writer.
- **The reader has an exact allow-list** (:data:`READER_SETTINGS`): the settings clickhouse-connect
  and the dashboard send, nothing else. Its limits (:data:`READER_LIMITS`) are applied on every
  request over whatever it asked for.
- **Some settings are fixed for everyone** (:data:`FORCED`): sent on every request, never
  changeable by a request. They are also set on every engine handle when it opens, so they hold
  even for a statement that went round the policy.
- **Values are data.** A value is always written as a quoted, escaped string literal
  (:func:`literal`) and the engine converts it to the setting's type: no value is ever pasted into
  SQL, so ``'1', max_execution_time = 0`` is one (invalid) value, not three settings.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FORCED",
    "FIXED",
    "READER_LIMITS",
    "READER_SETTINGS",
    "FREE_TEXT_ALLOWED",
    "FREE_TEXT_TYPES",
    "SettingRefused",
    "SettingsPolicy",
    "literal",
]

#: Fixed on every request of every user, and on every engine handle when it opens.
FORCED: dict[str, str] = {
    # The Values format evaluates SQL expressions in a field it cannot read as a literal
    # (`INSERT … VALUES (file('/etc/passwd'))`, `format(Values, …, '(url(…))')`): data is data.
    "input_format_values_interpret_expressions": "0",
    "input_format_values_deduce_templates_of_expressions": "0",
    # Reading the process's own code and addresses serves no dashboard or worker.
    "allow_introspection_functions": "0",
    # Settings after FORMAT in an INSERT would be read from the data line, past the policy's view.
    "allow_settings_after_format_in_insert": "0",
    # The policy reads statements as ClickHouse SQL; under `dialect = 'prql'` the engine would run
    # something else than what was checked, and the handle's own SET would no longer parse.
    "dialect": "clickhouse",
}

#: Never changed by a request, whoever sends it: the fixed settings, the handle's read-only mode
#: (a writer's ``readonly = 1`` would leave its handle unable to reset itself) and the thread
#: priority (a negative one takes the CPU from everything else).
FIXED = frozenset(FORCED) | {"readonly", "os_thread_priority"}

#: Applied to every reader request, above whatever it asked for, and re-applied on every request
#: so that nothing a request does can leave a handle with other limits. The thread priority
#: (nice 19) lets the writer's inserts take the CPU first when dashboards run slow queries.
READER_LIMITS: dict[str, str] = {
    "max_execution_time": "30",
    "max_memory_usage": str(2 * 1024**3),
    "max_threads": "2",
    "os_thread_priority": "19",
    # A result is held whole in the engine's memory and then in the reply (chdb does not stream):
    # max_memory_usage does not count it, so a 3 GB result went through. The largest dashboard
    # export is a few MB.
    "max_result_bytes": str(256 * 1024**2),
    "result_overflow_mode": "throw",
}

#: Everything a reader request may set: what clickhouse-connect sends with a query (it reads
#: ``system.settings`` and sends these two on every request; the Arrow one with ``query_arrow``)
#: and the dashboard's ``join_use_nulls``. Exact names, no patterns.
READER_SETTINGS = frozenset(
    {
        "cast_string_to_dynamic_use_inference",
        "date_time_input_format",
        "output_format_arrow_string_as_string",
        "join_use_nulls",
    }
)

#: Setting types whose value is free text (a path, SQL, a URL, a map of those).
FREE_TEXT_TYPES = frozenset({"String", "Map", "URI"})

#: Free-text settings the writer may set: the insert deduplication token of its batches
#: (streams/sink.py, the migrations' backfills) and a query's comment. Neither is read as a path,
#: SQL or an address.
FREE_TEXT_ALLOWED = frozenset({"insert_deduplication_token", "log_comment"})


class SettingRefused(Exception):
    """A setting a request may not change; ``code`` is what a server answers."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def literal(value: str) -> str:
    """``value`` as a ClickHouse string literal: quoted, with backslashes, quotes and control
    characters escaped. The engine converts it to the setting's type (``SET max_threads = '2'``)."""
    escaped = (
        value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
        .replace("\t", "\\t").replace("\0", "\\0")
    )  # fmt: skip
    return f"'{escaped}'"


@dataclass(frozen=True)
class SettingsPolicy:
    """The engine's settings and their types (``system.settings``; MergeTree table settings from
    ``system.merge_tree_settings``), and the rules above applied to them."""

    types: dict[str, str]
    table_types: dict[str, str]

    def check(self, name: str, role: str, user: str) -> None:
        """Refuse ``name`` for a request of ``role`` (``reader`` or ``writer``): unknown (115),
        fixed, free text, or outside the reader's allow-list (164)."""
        from dozor.infra.chdb_policy import READER

        if name not in self.types:
            raise SettingRefused(
                f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)", 115
            )
        if name in FIXED or (role == READER and name not in READER_SETTINGS):
            raise _readonly(user, name)
        if self.types[name] in FREE_TEXT_TYPES and name not in FREE_TEXT_ALLOWED:
            raise _readonly(user, name, "its value is free text (a path, SQL or an address)")

    def check_clause_item(self, name: str, value: str | None, role: str, user: str) -> None:
        """An item of a statement's SETTINGS clause: a query setting (as :meth:`check`) or a
        MergeTree table setting, its value one literal."""
        if value is None:
            raise _readonly(user, name, "a setting's value must be one literal, not an expression")
        if name in self.table_types and name not in self.types:
            if self.table_types[name] in FREE_TEXT_TYPES:
                raise _readonly(user, name, "a table setting of free text (a disk, a path, a codec)")
            return
        self.check(name, role, user)


def _readonly(user: str, name: str, why: str = "") -> SettingRefused:
    reason = f" ({why})" if why else ""
    return SettingRefused(
        f"Code: 164. DB::Exception: {user}: Cannot modify '{name}' setting in readonly mode{reason}. "
        "(READONLY)",
        164,
    )
