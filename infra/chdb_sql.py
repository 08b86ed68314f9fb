"""Reading ClickHouse's own renderings of a statement: its parse tree and its canonical text.

The endpoint never parses SQL itself. It asks the engine for two views of every statement:

- ``EXPLAIN AST`` — the parse tree, read here into :class:`Node`. It shows every function, table
  and engine, but it hides some parts: a ``SETTINGS`` clause is a bare ``Set`` node with neither
  names nor values, and a ``FORMAT`` clause is only an identifier.
- ``formatQuerySingleLine`` — the statement as the engine prints it back: keywords in capitals,
  every string single-quoted with backslash escapes, no comments. :func:`tokens` splits that
  canonical text, so a ``SETTINGS`` or ``FORMAT`` clause is read from the engine's own spelling,
  never from what the client typed; a word inside a string literal is never taken for a keyword.

The two views are checked against each other: every ``Set`` node of the tree must be matched by a
``SETTINGS`` clause read from the text, or the statement is refused (:func:`settings_clauses`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "Node",
    "Token",
    "Unreadable",
    "parse_ast",
    "tokens",
    "SettingItem",
    "settings_clauses",
    "set_statement",
    "format_names",
    "unquote",
]


class Unreadable(ValueError):
    """The engine's rendering of a statement could not be read; the statement is refused."""


@dataclass
class Node:
    """One line of ``EXPLAIN AST``: its kind (``Function``, ``TableIdentifier``…), the words after
    it, and its children."""

    kind: str
    args: list[str]
    children: list[Node] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        """This node and every node under it, parents before children."""
        yield self
        for c in self.children:
            yield from c.walk()

    def walk_with_parent(self, parent: Node | None = None) -> Iterator[tuple[Node, Node | None]]:
        yield self, parent
        for c in self.children:
            yield from c.walk_with_parent(self)

    @property
    def name(self) -> str:
        return self.args[0] if self.args else ""


_SUFFIX = re.compile(r"\s*\((?:children \d+|alias [^)]*)\)")
#: Second words of the node kinds EXPLAIN AST prints as two words ("Storage definition"…).
_TWO_WORD = ("definition", "query", "lifetime", "layout", "range")


def parse_ast(text: str) -> Node:
    """Read ``EXPLAIN AST`` output (one node a line, indented one space a level) into a tree."""
    root: Node | None = None
    stack: list[tuple[int, Node]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        words = _SUFFIX.sub("", line.strip()).split()
        if len(words) > 1 and words[1] in _TWO_WORD:
            words = [f"{words[0]} {words[1]}", *words[2:]]
        node = Node(words[0], words[1:])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif root is None:
            root = node
        else:
            raise Unreadable("more than one statement")
        stack.append((depth, node))
    if root is None:
        raise Unreadable("empty query")
    return root


@dataclass(frozen=True)
class Token:
    """A lexical token of canonical SQL: ``kind`` is word, string, ident (quoted identifier),
    number or punct; ``text`` is the token as written."""

    kind: str
    text: str
    #: Where the token starts in the text it was read from.
    start: int = field(default=0, compare=False)

    @property
    def keyword(self) -> str:
        """The word if it is written as a keyword — the canonical text writes every keyword in
        capitals and leaves identifiers as they were (``FROM system.settings`` has a table called
        settings, not a clause) — else ''."""
        return self.text if self.kind == "word" and self.text.isupper() else ""


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<ident>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")
  | (?P<heredoc>\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$)
  | (?P<number>(?:0[xX][0-9A-Fa-f]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def tokens(sql: str) -> list[Token]:
    """The tokens of ``sql``; whitespace and comments dropped, ``$$…$$`` taken as a string.

    An unterminated string or identifier is :class:`Unreadable`: the engine's canonical text never
    has one, so a statement that produces one is not what it seems.
    """
    out: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None:  # pragma: no cover - the punct branch matches any character
            raise Unreadable(f"cannot read the statement at {sql[pos : pos + 30]!r}")
        kind = m.lastgroup if m.lastgroup != "tag" else "heredoc"
        text = m.group()
        pos = m.end()
        if kind in ("ws", "comment"):
            continue
        if kind == "heredoc":
            kind = "string"
        if kind == "punct" and text in "'`\"":
            raise Unreadable("an unterminated quote")
        out.append(Token(kind or "punct", text, m.start()))
    return out


def unquote(token: Token) -> str:
    """A string literal's value (backslash escapes and doubled quotes resolved); any other token's
    text as written."""
    text = token.text
    if token.kind != "string":
        return text
    if text.startswith("$"):
        return text[text.index("$", 1) + 1 : text.rindex("$", 0, len(text) - 1)]
    body = text[1:-1].replace("''", "'")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f"}


@dataclass(frozen=True)
class SettingItem:
    """``name = value`` of a SETTINGS clause or a SET statement. ``value`` is the literal's value
    as text, or None when the value is not one literal (an expression, a function call)."""

    name: str
    value: str | None
    #: ``name = DEFAULT``: back to the engine's default.
    default: bool = False


def _literal_value(value: list[Token]) -> str | None:
    """The text of a value that is exactly one literal (a number with an optional sign, a string,
    true/false/NULL); None for anything else."""
    if len(value) == 2 and value[0].text in "+-" and value[1].kind == "number":
        return value[0].text.lstrip("+") + value[1].text
    if len(value) != 1:
        return None
    t = value[0]
    if t.kind in ("number", "string"):
        return unquote(t)
    if t.text.upper() in ("TRUE", "FALSE", "NULL"):
        return t.text.lower()
    return None


def _items(toks: list[Token], i: int) -> tuple[list[SettingItem], int]:
    """The ``name = value, …`` list starting at ``toks[i]``; returns the items and the index after."""
    items: list[SettingItem] = []
    while i < len(toks):
        name = toks[i]
        if name.kind not in ("word", "ident") or i + 1 >= len(toks) or toks[i + 1].text != "=":
            raise Unreadable(f"a SETTINGS item is not 'name = value' at {name.text!r}")
        i += 2
        depth, start = 0, i
        while i < len(toks):
            t = toks[i]
            if t.text == "(" or t.text == "[":
                depth += 1
            elif t.text in (")", "]"):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and (t.text == "," or (t.keyword and i > start)):
                break  # a keyword after the value starts the statement's next clause
            i += 1
        if i == start:
            raise Unreadable(f"the setting {name.text!r} has no value")
        value = toks[start:i]
        default = len(value) == 1 and value[0].keyword == "DEFAULT"
        items.append(SettingItem(name.text.strip('`"'), None if default else _literal_value(value), default))
        if i < len(toks) and toks[i].text == ",":
            i += 1
            continue
        return items, i
    return items, i


def settings_clauses(toks: list[Token]) -> list[list[SettingItem]]:
    """Every ``SETTINGS …`` (and ``ALTER … MODIFY SETTING …``) list of a canonical statement, in
    the order written."""
    clauses = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.keyword == "SETTINGS" or (t.keyword == "SETTING" and i > 0 and toks[i - 1].keyword == "MODIFY"):
            items, i = _items(toks, i + 1)
            clauses.append(items)
            continue
        i += 1
    return clauses


def set_statement(toks: list[Token]) -> list[SettingItem]:
    """The items of a canonical ``SET a = 1, b = 'x'``."""
    if not toks or toks[0].keyword != "SET":
        raise Unreadable("not a SET statement")
    items, end = _items(toks, 1)
    if end != len(toks):
        raise Unreadable(f"cannot read SET after {toks[end].text!r}")
    return items


def format_names(toks: list[Token]) -> list[str]:
    """The names after every ``FORMAT`` keyword of a canonical statement (output formats, and the
    data format of an INSERT). A function ``format(…)`` is not a clause."""
    names = []
    for a, b in zip(toks, toks[1:], strict=False):
        if a.keyword == "FORMAT" and b.kind in ("word", "ident"):
            names.append(b.text.strip('`"'))
    return names
