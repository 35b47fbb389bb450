"""What a Python expression names, worked out from the source alone (``code_check`` applies the
rules to it). The code is parsed, never run.

Names are resolved through the file's own imports and the spellings that stand for the same
object, so that a rule listing ``os.system`` sees these:

- aliases: ``import os as o``, ``from os import system as run``;
- the C modules under the public ones (``MODULE_ALIASES``): ``posix`` and ``nt`` are ``os``,
  ``_posixsubprocess`` and ``_winapi`` are ``subprocess``, ``_socket`` is ``socket``, ...;
- the namespaces that hold every module or builtin: ``builtins.``, ``__builtins__.``,
  ``__builtin__.``, ``sys.modules[...]`` and ``sys.modules.get(...)``, ``globals()``,
  ``locals()``, ``vars(x)``, ``x.__dict__``;
- attribute access spelled as a call with a literal name: ``getattr(x, "a")``,
  ``x.get("a")``, ``x.__getattribute__("a")``, ``object.__getattribute__(x, "a")``,
  ``operator.attrgetter("a.b")(x)``, ``operator.methodcaller("a")(x)``;
- imports spelled as calls with a literal name: ``__import__("os")``,
  ``importlib.import_module("os")``, ``pkgutil.resolve_name("os:system")``,
  ``pydoc.locate("os.system")``;
- a module re-exported by another one (``shutil.os.system``, ``asyncio.subprocess``):
  ``suffixes`` gives the names inside a dotted name that start at a module, for a name
  rooted in an imported module (``arr.ctypes`` on a local array is not ``ctypes``).

This is not every spelling Python offers, and cannot be: a name computed at run time, a
module carried around as a value, a dunder or a private attribute can reach anything. Those
are findings of their own (``reach``), so that what this module cannot resolve is not a pass.
"""

from __future__ import annotations

import ast
from typing import Iterator, Optional

BUILTIN_PREFIXES = ("builtins.", "__builtins__.", "__builtin__.", "sys.modules.")
DYNAMIC_IMPORTERS = {"__import__", "importlib.import_module", "importlib.__import__"}
NAME_IMPORTERS = {"pkgutil.resolve_name", "pydoc.locate"}
"""Calls that import a module and return the object a dotted name (``os:system``) names."""
MODULE_ALIASES = {
    "posix": "os", "nt": "os",
    "_posixsubprocess": "subprocess", "_winapi": "subprocess",
    "_socket": "socket", "_ssl": "ssl",
    "_multiprocessing": "multiprocessing", "_posixshmem": "multiprocessing",
    "_ctypes": "ctypes", "_io": "io", "_pyio": "io", "_signal": "signal",
    "_frozen_importlib": "importlib._bootstrap", "_frozen_importlib_external": "importlib._bootstrap_external",
}
"""Low-level modules that are a public one under another name (what the public one imports)."""
NAMESPACES = {"", "builtins", "__builtins__", "__builtin__", "sys.modules"}
"""Names whose attributes are every builtin or every module (``""``: ``globals()`` / ``locals()``)."""
_GETATTR = {"getattr", "object.__getattribute__", "type.__getattribute__"}
_ATTR_METHODS = {"get", "__getattribute__", "__getattr__"}


def canonical(name: str) -> str:
    """A dotted name with its first component un-aliased: ``posix.system`` -> ``os.system``."""
    head, dot, rest = name.partition(".")
    target = MODULE_ALIASES.get(head)
    return f"{target}{dot}{rest}" if target else name


def normalize(name: str) -> str:
    """``builtins.eval`` -> ``eval``; ``sys.modules.posix.system`` -> ``os.system``."""
    changed = True
    while changed:
        changed = False
        for prefix in BUILTIN_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix):], True
    return canonical(name)


def const_str(node: Optional[ast.AST]) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _bound_modules(node: ast.Import) -> Iterator[str]:
    for a in node.names:
        yield a.asname or a.name.split(".")[0]


class Resolver:
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
        self.imported = {canonical(target).split(".")[0] for target in self.aliases.values()}
        """Top-level modules this file imports: a name rooted in one may hold a re-exported module."""
        self.modules = {local for node in ast.walk(tree) if isinstance(node, ast.Import)
                        for local in _bound_modules(node)}
        """Local names an ``import`` statement binds to a module (``import a.b as c`` binds ``c``)."""

    def name(self, node: ast.AST) -> Optional[str]:
        """The dotted name ``node`` evaluates to, normalized; "" for globals()/locals()."""
        raw = self._raw(node)
        return None if raw is None else normalize(raw)

    def suffixes(self, name: str) -> Iterator[str]:
        """The names inside ``name`` that start at one of its later components, when its root
        is an imported module: ``shutil.os.system`` -> ``os.system``, ``system``."""
        parts = name.split(".")
        if parts[0] not in self.imported:
            return
        for i in range(1, len(parts)):
            yield normalize(".".join(parts[i:]))

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
            key = const_str(node.slice)
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
        if func in _GETATTR and len(args) >= 2 and const_str(args[1]) is not None:
            return self._join(self._raw(args[0]), const_str(args[1]))
        if func in DYNAMIC_IMPORTERS and args and const_str(args[0]) is not None:
            return const_str(args[0])
        if func in NAME_IMPORTERS and args and const_str(args[0]) is not None:
            return const_str(args[0]).replace(":", ".")
        if isinstance(node.func, ast.Attribute) and node.func.attr in _ATTR_METHODS and args:
            key = const_str(args[0])  # sys.modules.get("os"), vars(os).get("system")
            base = self._raw(node.func.value)
            if key is not None and base is not None:
                return self._join(base, key)
        if isinstance(node.func, ast.Call) and len(args) == 1:
            return self._getter(node.func, args[0])
        return None

    def _getter(self, maker: ast.Call, target: ast.AST) -> Optional[str]:
        """``operator.attrgetter("a.b")(x)`` -> ``x.a.b``; ``operator.methodcaller("a")(x)`` -> ``x.a``."""
        kind = self.name(maker.func)
        key = const_str(maker.args[0]) if maker.args else None
        if kind not in ("operator.attrgetter", "operator.methodcaller") or key is None:
            return None
        name = self._raw(target)
        for part in key.split(".") if kind == "operator.attrgetter" else [key]:
            name = self._join(name, part)
        return name

    def computed_attribute(self, node: ast.AST, sensitive: set[str]) -> Optional[str]:
        """The namespace whose attribute ``node`` reads with a name computed at run time
        (``getattr(os, name)``, ``sys.modules[name]``, ``vars(builtins).get(name)``), when that
        namespace is builtins, ``sys.modules``, ``globals()`` or a module in ``sensitive``."""
        if isinstance(node, ast.Subscript):
            base, key = node.value, node.slice
        elif isinstance(node, ast.Call) and self.name(node.func) in _GETATTR and len(node.args) >= 2:
            base, key = node.args[0], node.args[1]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in _ATTR_METHODS and node.args):
            base, key = node.func.value, node.args[0]
        else:
            return None
        if isinstance(key, ast.Constant) or (isinstance(key, ast.Name) and key.id == "__name__"):
            return None  # a literal is resolved; sys.modules[__name__] is the file's own module
        namespace = self.name(base)
        if namespace is None or not (namespace in NAMESPACES or namespace in sensitive):
            return None
        return namespace or "globals()"
