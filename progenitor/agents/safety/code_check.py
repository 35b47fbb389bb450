"""The constitution's rules on Python code, checked with ``ast`` (the code is parsed, never run).

Names are resolved through the file's own imports, so ``import socket as s``,
``from os import system as run``, ``getattr(__builtins__, "eval")``, ``vars(builtins)["exec"]``,
``sys.modules["os"].system`` and ``__import__("os").system`` all resolve to the name the rule
lists. A forbidden callable is a finding wherever it is *named*, called or not, because
``e = eval`` is as bad as ``eval(...)``. The source is parsed from bytes, so a coding
cookie (``# coding: utf-7``) is decoded the way the interpreter would decode it.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from typing import Optional

from progenitor.agents.safety.constitution import Constitution
from progenitor.agents.safety.findings import Finding, dedupe

_BUILTIN_PREFIXES = ("builtins.", "__builtins__.", "__builtin__.", "sys.modules.")
_DYNAMIC_IMPORTERS = {"__import__", "importlib.import_module", "importlib.__import__"}
_ABSOLUTE = re.compile(r"^(/|~/)[\w.~+@-]")


def _normalize(name: str) -> str:
    """``builtins.eval`` -> ``eval``; ``sys.modules.os.system`` -> ``os.system``."""
    changed = True
    while changed:
        changed = False
        for prefix in _BUILTIN_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix):], True
    return name


def _const_str(node: Optional[ast.AST]) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


class _Resolver:
    """Maps an expression to the dotted name it stands for, through the file's imports."""

    def __init__(self, tree: ast.AST):
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for a in node.names:
                    if a.name != "*":
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def name(self, node: ast.AST) -> Optional[str]:
        """The dotted name ``node`` evaluates to, normalized; "" for globals()/locals()."""
        raw = self._raw(node)
        return None if raw is None else _normalize(raw)

    def _join(self, base: Optional[str], attr: str) -> str:
        # An unknown base (a local object, a call's result) becomes "?", so that a rule such
        # as "*.symlink_to" still sees ``Path(p).symlink_to(...)``.
        if base is None:
            return f"?.{attr}"
        return f"{base}.{attr}" if base else attr

    def _raw(self, node: ast.AST) -> Optional[str]:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            if node.attr == "__dict__":  # X.__dict__["eval"] is X.eval
                return self._raw(node.value)
            return self._join(self._raw(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            key = _const_str(node.slice)
            return None if key is None else self._join(self._raw(node.value), key)
        if isinstance(node, ast.Call):
            return self._call(node)
        return None

    def _call(self, node: ast.Call) -> Optional[str]:
        func = self.name(node.func)
        args = node.args
        if func in ("globals", "locals") and not args:
            return ""
        if func == "vars" and len(args) == 1:
            return self._raw(args[0])
        if func == "getattr" and len(args) >= 2 and _const_str(args[1]) is not None:
            return self._join(self._raw(args[0]), _const_str(args[1]))
        if func in _DYNAMIC_IMPORTERS and args and _const_str(args[0]) is not None:
            return _const_str(args[0])
        return None


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and _const_str(body[0].value) is not None:
                ids.add(id(body[0].value))
    return ids


def _because(reason: str) -> str:
    return f": {reason}" if reason else ""


class _Checker:
    def __init__(self, path: str, constitution: Constitution, tree: ast.AST):
        self.path = path
        self.c = constitution
        self.resolve = _Resolver(tree)
        self.findings: list[Finding] = []

    def add(self, rule: str, severity: str, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(rule=rule, severity=severity, file=self.path,
                                     line=getattr(node, "lineno", None), message=message))

    def module(self, module: str, node: ast.AST, how: str) -> None:
        """An import of ``module`` (dotted): forbidden if it is, or is inside, a listed module."""
        for rule in self.c.forbidden_imports:
            hit = next((m for m in rule.modules if module == m or module.startswith(m + ".")), None)
            if hit:
                self.add("forbidden-import", rule.severity, node,
                         f"{how} {module!r}, a module the constitution forbids{_because(rule.reason)}")
                return

    def callable_name(self, name: str, node: ast.AST, how: str) -> None:
        for rule in self.c.forbidden_calls:
            hit = next((p for p in rule.calls if fnmatch.fnmatchcase(name, p)), None)
            if hit:
                shown = name.replace("?.", "<object>.")
                self.add("forbidden-call", rule.severity, node,
                         f"{how} {shown!r}, which the constitution forbids{_because(rule.reason)}")
                return

    def imports(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                self.module(a.name, node, "imports")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            self.module(node.module, node, "imports from")
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if a.name == "*":
                    self.star(node.module, node)
                    continue
                self.module(full, node, "imports")  # from urllib import request
                self.callable_name(_normalize(full), node, "imports")

    def star(self, module: str, node: ast.AST) -> None:
        """``from os import *`` hides which names arrive: forbidden if any listed call lives there."""
        for rule in self.c.forbidden_calls:
            inside = [p for p in rule.calls if p.startswith(module + ".")]
            if inside:
                self.add("forbidden-call", rule.severity, node,
                         f"star-imports {module!r}, which brings in {inside[0]!r}{_because(rule.reason)}")
                return

    def dynamic_import(self, node: ast.Call) -> None:
        if self.resolve.name(node.func) not in _DYNAMIC_IMPORTERS:
            return
        literal = _const_str(node.args[0]) if node.args else None
        if literal is not None:
            self.module(literal, node, "dynamically imports")
        elif self.c.dynamic_imports is not None:
            rule = self.c.dynamic_imports
            self.add("dynamic-import", rule.severity, node,
                     "imports a module whose name is computed at run time, which the constitution "
                     f"cannot check{_because(rule.reason)}")

    def absolute_path(self, node: ast.Constant) -> None:
        rule = self.c.absolute_paths
        value = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
        if rule is None or not _ABSOLUTE.match(value):
            return
        if any(fnmatch.fnmatchcase(value, allowed) for allowed in rule.allow):
            return
        self.add("absolute-path", rule.severity, node,
                 f"names the absolute path {value[:80]!r}, outside its tree{_because(rule.reason)}")

    def run(self, tree: ast.AST) -> list[Finding]:
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            self.imports(node)
            if isinstance(node, ast.Call):
                self.dynamic_import(node)
            if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)):
                if not (isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)):
                    name = self.resolve.name(node)
                    if name:
                        self.callable_name(name, node, "uses")
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and id(node) not in docs:
                self.absolute_path(node)
        return sorted(dedupe(self.findings), key=lambda f: f.line or 0)


def check_python(source: bytes, path: str, constitution: Constitution) -> list[Finding]:
    """Every constitution finding in one Python file (``path`` is only used in the findings)."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        return [Finding(rule="unparsable", severity="high", file=path, line=line,
                        message=f"the file is not valid Python ({getattr(exc, 'msg', exc)}), so it cannot be reviewed")]
    return _Checker(path, constitution, tree).run(tree)
