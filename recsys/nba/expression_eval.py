"""Evaluation of parsed eligibility rules: compiled to one polars expression, or interpreted for one customer.

Both follow the same three-valued logic (missing is unknown; ``false and unknown`` is false; division by
zero is unknown), so a customer is eligible offline exactly when they are eligible one by one.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from recsys.nba.fields import FieldType

if TYPE_CHECKING:
    from recsys.nba.expressions import Node

_COMPARE = {"==", "!=", "<", "<=", ">", ">="}


def compile_node(node: Node) -> pl.Expr:
    """Return the polars expression of ``node`` (may be null where the rule is unknown)."""
    op, args = node.op, node.args
    if op == "lit":
        return pl.lit(node.value, dtype=pl.Float64 if node.type == FieldType.NUM else None)
    if op == "field":
        return pl.col(node.value)
    if op == "neg":
        return -compile_node(args[0])
    if op == "not":
        return ~compile_node(args[0])
    if op in ("in", "not in"):
        left, right = args
        if right.op == "list":
            values = pl.Series(list(right.value), dtype=pl.Float64 if right.type == FieldType.LIST_NUM else pl.String)
            inside = compile_node(left).is_in(values.implode())
        else:
            inside = compile_node(right).list.contains(pl.lit(left.value))
        return ~inside if op == "not in" else inside
    a, b = compile_node(args[0]), compile_node(args[1])
    binary = {
        "and": lambda: a & b,
        "or": lambda: a | b,
        "==": lambda: a == b,
        "!=": lambda: a != b,
        "<": lambda: a < b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        ">=": lambda: a >= b,
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        # Division by zero is unknown (null), as in the per-customer interpreter, not ±inf.
        "/": lambda: pl.when(b != 0).then(a / b).otherwise(None),
    }
    return binary[op]()


def interpret_node(node: Node, record: Mapping[str, Any]) -> Any:
    """Return the value of ``node`` for one record (``None`` = unknown)."""
    op, args = node.op, node.args
    if op in ("lit", "list"):
        return node.value
    if op == "field":
        return record.get(node.value)
    if op == "and":
        left, right = interpret_node(args[0], record), interpret_node(args[1], record)
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if op == "or":
        left, right = interpret_node(args[0], record), interpret_node(args[1], record)
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    values = [interpret_node(arg, record) for arg in args]
    if any(v is None for v in values):
        return None
    if op == "not":
        return not values[0]
    if op == "neg":
        return -values[0]
    if op in ("in", "not in"):
        inside = values[0] in list(values[1])
        return (not inside) if op == "not in" else inside
    a, b = values
    if op == "/":
        return None if b == 0 else a / b
    return _PY_OPS[op](a, b)


_PY_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}
