"""Strings that Python evaluates as code: forward references in annotations.

``def f(x: "Config")`` is a string to ``ast``, and an expression to ``typing.get_type_hints``,
to pydantic (which builds every model's fields from its annotations) and to dataclasses'
helpers: they ``eval`` it in the module's namespace. So a string annotation is parsed and
reviewed like the rest of the code, placed at the string's line; one that does not parse is
a finding of its own. Strings inside ``Literal[...]`` and ``Annotated``'s metadata are values,
never evaluated, and stay strings.
"""

from __future__ import annotations

import ast
from typing import Iterator

from progenitor.agents.safety.names import const_str

_VALUES = {"Literal"}
_MAX_DEPTH = 4


def _base_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def forward_refs(annotation: ast.AST) -> Iterator[ast.Constant]:
    """The string constants of ``annotation`` that a type checker or pydantic would evaluate."""
    stack = [annotation]
    while stack:
        node = stack.pop()
        if const_str(node) is not None:
            assert isinstance(node, ast.Constant)
            yield node
        elif isinstance(node, ast.Subscript):
            base = _base_name(node.value)
            if base in _VALUES:
                continue
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            stack += [node.value, *(items[:1] if base == "Annotated" else items)]
        elif isinstance(node, (ast.Tuple, ast.List)):
            stack += node.elts
        elif isinstance(node, ast.BinOp):
            stack += [node.left, node.right]


def annotations_of(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign):
            yield node.annotation
        elif isinstance(node, ast.arg) and node.annotation is not None:
            yield node.annotation
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            yield node.returns


def parse_forward_refs(tree: ast.AST) -> tuple[list[ast.Expression], list[ast.Constant]]:
    """(the expressions string annotations hold, placed at their string's line; the strings that
    are not expressions)."""
    parsed, broken = [], []
    todo = [(ann, 0) for ann in annotations_of(tree)]
    while todo:
        annotation, depth = todo.pop()
        for ref in forward_refs(annotation):
            try:
                expr = ast.parse(ref.value.strip(), mode="eval")
            except (SyntaxError, ValueError):
                broken.append(ref)
                continue
            for node in ast.walk(expr):
                ast.copy_location(node, ref)
            parsed.append(expr)
            if depth < _MAX_DEPTH:
                todo.append((expr.body, depth + 1))
    return parsed, broken
