"""A small, safe eligibility language over profile fields.

    lifecycle in ["at_risk", "lapsed"] and clv >= 200 and tier != "gold"

Grammar (lowest precedence first; comparisons do not chain)::

    expr  := and ("or" and)*
    and   := not ("and" not)*
    not   := "not" not | cmp
    cmp   := sum [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") sum]
    sum   := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary)*
    unary := "-" unary | atom
    atom  := NUMBER | STRING | true | false | FIELD | "(" expr ")" | "[" literal ("," literal)* "]"

Text is tokenized and parsed by hand into a typed AST, checked against :data:`FIELD_TYPES` when the
catalog loads, and then either compiled to one polars expression (vectorised over a frame) or
interpreted for one customer (``expression_eval``). Nothing is ever ``eval``'d. Missing values follow SQL/polars logic
(unknown compares as unknown; ``false and unknown`` is false); a rule that ends unknown is false.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from recsys.exceptions import ConfigError
from recsys.nba.expression_eval import compile_node, interpret_node
from recsys.nba.fields import FIELD_TYPES, FieldType

MAX_SOURCE_CHARS = 2_000
MAX_TOKENS = 400
MAX_DEPTH = 24
MAX_STRING_CHARS = 200
MAX_NUMBER_DIGITS = 15
MAX_LIST_ITEMS = 500

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<num>\d+(?:\.\d+)?)
      | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\+|-|\*|/)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}
_N, _S, _B = FieldType.NUM, FieldType.STR, FieldType.BOOL


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is num/str/op/name/kw/end; ``pos`` the 1-based column."""

    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Node:
    """A typed AST node. ``op`` is lit/field/list/neg/not/and/or/a comparison/in/not in/+-*/."""

    op: str
    type: FieldType
    args: tuple[Node, ...] = ()
    value: Any = None


class _Error(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


def tokenize(source: str) -> list[Token]:
    """Return the tokens of ``source``; raises ``_Error`` on a character the language does not know."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(source, pos)
        if not match or match.end() == pos:
            bad = source[pos:].lstrip()[:1]
            raise _Error(f"unexpected character {bad!r}", len(source) - len(source[pos:].lstrip()) + 1)
        kind = match.lastgroup or ""
        text = match.group(kind)
        start = match.start(kind) + 1
        if kind == "name" and text in _KEYWORDS:
            kind = "kw"
        tokens.append(Token(kind, text, start))
        if len(tokens) > MAX_TOKENS:
            raise _Error(f"expression too long (more than {MAX_TOKENS} tokens)", start)
        pos = match.end()
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token], schema: Mapping[str, FieldType]) -> None:
        self.tokens, self.schema, self.i, self.depth = tokens, schema, 0, 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, text: str) -> bool:
        if self.tok.kind == kind and self.tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, kind: str, text: str) -> None:
        if not self.accept(kind, text):
            raise _Error(f"expected {text!r} but found {self.tok.text or 'end of expression'!r}", self.tok.pos)

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Error(f"expression nested too deeply (more than {MAX_DEPTH} levels)", self.tok.pos)

    def parse(self) -> Node:
        node = self.expr()
        if self.tok.kind != "end":
            raise _Error(f"unexpected {self.tok.text!r} after a complete expression", self.tok.pos)
        return node

    def expr(self) -> Node:
        return self._logical("or", self.conj)

    def conj(self) -> Node:
        return self._logical("and", self.neg)

    def _logical(self, word: str, sub: Any) -> Node:
        pos = self.tok.pos
        node = sub()
        while self.accept("kw", word):
            right = sub()
            for side in (node, right):
                if side.type != _B:
                    raise _Error(f"'{word}' needs true/false on both sides, got a {side.type.value}", pos)
            node = Node(word, _B, (node, right))
        return node

    def neg(self) -> Node:
        if self.tok.kind == "kw" and self.tok.text == "not" and not self._next_is("kw", "in"):
            return self._prefix("not", _B, "true/false", self.neg)
        return self.compare()

    def _next_is(self, kind: str, text: str) -> bool:
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        return nxt is not None and nxt.kind == kind and nxt.text == text

    def compare(self) -> Node:
        left = self.arith()
        tok = self.tok
        if tok.kind == "op" and tok.text in _COMPARE:
            self.take()
            return self._check_compare(tok, left, self.arith())
        if tok.kind == "kw" and tok.text == "in":
            self.take()
            return self._check_in(tok, "in", left, self.arith())
        if tok.kind == "kw" and tok.text == "not" and self._next_is("kw", "in"):
            self.take()
            self.take()
            return self._check_in(tok, "not in", left, self.arith())
        return left

    def _check_compare(self, tok: Token, left: Node, right: Node) -> Node:
        if left.type != right.type or left.type not in (_N, _S, _B):
            raise _Error(f"cannot compare a {left.type.value} with a {right.type.value} using {tok.text!r}", tok.pos)
        if left.type != _N and tok.text not in ("==", "!="):
            raise _Error(f"{tok.text!r} needs numbers; {left.type.value}s support only == and !=", tok.pos)
        return Node(tok.text, _B, (left, right))

    def _check_in(self, tok: Token, op: str, left: Node, right: Node) -> Node:
        elem = {FieldType.LIST_STR: _S, FieldType.LIST_NUM: _N}.get(right.type)
        if elem is None:
            raise _Error(f"'{op}' needs a list on the right, got a {right.type.value}", tok.pos)
        if left.type != elem:
            raise _Error(f"'{op}': a {left.type.value} cannot be in a {right.type.value}", tok.pos)
        if right.op != "list" and left.op != "lit":
            raise _Error(
                f"'{op}' with a list field needs a literal on the left, e.g. \"DAIRY\" in top_categories", tok.pos
            )
        return Node(op, _B, (left, right))

    def arith(self) -> Node:
        return self._binary(("+", "-"), self.term)

    def term(self) -> Node:
        return self._binary(("*", "/"), self.unary)

    def _binary(self, ops: tuple[str, ...], sub: Any) -> Node:
        node = sub()
        while self.tok.kind == "op" and self.tok.text in ops:
            tok = self.take()
            right = sub()
            if node.type != _N or right.type != _N:
                raise _Error(f"{tok.text!r} needs numbers, got a {node.type.value} and a {right.type.value}", tok.pos)
            node = Node(tok.text, _N, (node, right))
        return node

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text == "-":
            return self._prefix("neg", _N, "a number", self.unary)
        return self.atom()

    def _prefix(self, op: str, type_: FieldType, needs: str, sub: Any) -> Node:
        """Parse the operand of the prefix operator at the current token (``not``, unary ``-``) and type-check it."""
        tok = self.take()
        self.nested()
        operand = sub()
        self.depth -= 1
        if operand.type != type_:
            raise _Error(f"{tok.text!r} needs {needs}, got a {operand.type.value}", tok.pos)
        return Node(op, type_, (operand,))

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            return Node("lit", _N, value=_number(tok))
        if tok.kind == "str":
            return Node("lit", _S, value=_string(tok))
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return Node("lit", _B, value=tok.text == "true")
        if tok.kind == "name":
            return self._field(tok)
        if tok.kind == "op" and tok.text == "(":
            self.nested()
            node = self.expr()
            self.depth -= 1
            self.expect("op", ")")
            return node
        if tok.kind == "op" and tok.text == "[":
            return self._list(tok)
        raise _Error(f"expected a value but found {tok.text or 'end of expression'!r}", tok.pos)

    def _field(self, tok: Token) -> Node:
        name = tok.text
        if name.startswith("_"):
            raise _Error(f"names starting with '_' are not allowed: {name!r}", tok.pos)
        if name not in self.schema:
            close = difflib.get_close_matches(name, list(self.schema), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _Error(f"unknown field {name!r}{hint}; known fields: {', '.join(sorted(self.schema))}", tok.pos)
        return Node("field", self.schema[name], value=name)

    def _list(self, open_tok: Token) -> Node:
        values: list[Any] = []
        types: set[FieldType] = set()
        if not self.accept("op", "]"):
            while True:
                tok = self.take()
                negative = tok.kind == "op" and tok.text == "-"
                if negative:
                    tok = self.take()
                if tok.kind == "num":
                    values.append(-_number(tok) if negative else _number(tok))
                    types.add(_N)
                elif tok.kind == "str" and not negative:
                    values.append(_string(tok))
                    types.add(_S)
                else:
                    raise _Error(f"list items must be literal strings or numbers, found {tok.text or 'end'!r}", tok.pos)
                if len(values) > MAX_LIST_ITEMS:
                    raise _Error(f"list too long (more than {MAX_LIST_ITEMS} items)", tok.pos)
                if self.accept("op", "]"):
                    break
                self.expect("op", ",")
        if len(types) > 1:
            raise _Error("list mixes strings and numbers", open_tok.pos)
        ltype = FieldType.LIST_NUM if types == {_N} else FieldType.LIST_STR
        return Node("list", ltype, value=tuple(values))


def _number(tok: Token) -> float | int:
    digits = tok.text.replace(".", "")
    if len(digits) > MAX_NUMBER_DIGITS:
        raise _Error(f"number literal too large (more than {MAX_NUMBER_DIGITS} digits): {tok.text[:20]}…", tok.pos)
    return float(tok.text) if "." in tok.text else int(tok.text)


def _string(tok: Token) -> str:
    body = tok.text[1:-1]
    if len(body) > MAX_STRING_CHARS:
        raise _Error(f"string literal too long (more than {MAX_STRING_CHARS} characters)", tok.pos)
    # Only quote and backslash escapes exist; anything else keeps its backslash literally.
    return re.sub(r"\\(['\"\\])", r"\1", body)


@dataclass(frozen=True)
class Expression:
    """A parsed, type-checked eligibility rule. Build with :func:`parse`."""

    source: str
    root: Node

    @property
    def fields(self) -> frozenset[str]:
        """Names of the fields the rule reads."""
        found: set[str] = set()
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.op == "field":
                found.add(node.value)
            stack.extend(node.args)
        return frozenset(found)

    def to_polars(self) -> pl.Expr:
        """Return a Boolean polars expression (missing → false) computing the rule over a frame's columns."""
        return compile_node(self.root).fill_null(False)

    def evaluate(self, record: Mapping[str, Any]) -> bool:
        """Return the rule's value for one customer's fields (a missing field counts as unknown)."""
        return interpret_node(self.root, record) is True

    def mask(self, frame: pl.DataFrame) -> pl.Series:
        """Return the Boolean mask of rows of ``frame`` for which the rule holds."""
        return frame.select(self.to_polars().alias("eligible")).to_series()


def parse(source: str, *, where: str = "expression", schema: Mapping[str, FieldType] | None = None) -> Expression:
    """Parse and type-check ``source`` against ``schema`` (default :data:`FIELD_TYPES`); returns an Expression.

    Raises ``ConfigError`` naming ``where``, the column and the problem for any syntax, type, size or name error.
    """
    if not isinstance(source, str):
        raise ConfigError(f"{where}: the rule must be a string, got {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise ConfigError(f"{where}: rule too long ({len(source)} characters, at most {MAX_SOURCE_CHARS})")
    if not source.strip():
        raise ConfigError(f"{where}: the rule is empty; write a condition or leave the field out")
    try:
        root = _Parser(tokenize(source), schema if schema is not None else FIELD_TYPES).parse()
    except _Error as exc:
        raise ConfigError(f"{where}: {exc} (column {exc.pos} of {_excerpt(source)})") from None
    if root.type != _B:
        raise ConfigError(
            f"{where}: the rule must be a true/false condition, but {_excerpt(source)} is a {root.type.value}"
        )
    return Expression(source, root)


def _excerpt(source: str) -> str:
    return repr(source if len(source) <= 80 else source[:77] + "...")
