"""The constitution's rules on Python code, checked with ``ast`` (the code is parsed, never run).

First the allow-list (``reach``): imports outside ``allowed_imports``, and every way of
reaching a name other than an import and attributes written out (dunders, private names,
modules as values, names computed at run time handed to a resolver, loaders that call what
their data names). That is what stops the spellings a deny-list misses; the rules below are
the second layer, which names what is forbidden even among allowed modules.

Every name is resolved to what it stands for (``names``: import aliases, the C modules
under the public ones, builtins and ``sys.modules``, ``getattr`` and its cousins, modules
re-exported by others), then:

- ``forbidden_imports``: an import of a listed module, or of a module inside it, under any
  name (``import _posixsubprocess`` is ``subprocess``), and a listed module reached inside
  another one's namespace (``asyncio.subprocess``, ``torch.multiprocessing``);
- ``forbidden_calls``: a listed callable wherever it is *named*, called or not (``e = eval``
  is as bad as ``eval(...)``);
- ``dynamic_imports``: a module whose name is computed at run time, and an attribute with a
  computed name on builtins, ``sys.modules``, ``globals()`` or a module a rule lists
  (``getattr(os, "sys" + "tem")``);
- ``absolute_paths``: a literal absolute or home path, one that climbs out with ``..``, and
  a path built from the filesystem's root (``os.path.join("/", ...)``, ``os.sep + "etc"``,
  ``f"/{name}"``, ``Path.home()``).

The source is parsed from bytes, so a coding cookie (``# coding: utf-7``) is decoded the
way the interpreter would decode it.

The deny-list siblings considered, and what catches each (tests/agents/safety/test_constitution.py and
the red team's ``low-level-*`` attacks hold one case of each; ``tests/agents/safety/review_probes.py``
holds the spellings that got past this list and what the allow-list makes of them):

- ``posix.system`` / ``fork`` / ``setsid`` / ``execv`` / ``posix_spawn`` / ``kill``, the same on
  ``nt``, ``from posix import system``, ``from posix import *``: ``posix`` and ``nt`` are ``os``;
- ``_posixsubprocess.fork_exec``, ``_winapi.CreateProcess``: they are ``subprocess``;
  ``_socket``, ``_ssl``, ``_multiprocessing``, ``_posixshmem``, ``_ctypes``, ``_signal``, ``_io``:
  their public module;
- ``sys.modules["posix"]``, ``sys.modules.get("os")``, ``vars(sys.modules)["os"]``,
  ``os.__dict__["system"]``, ``globals()["__builtins__"]["eval"]``: namespaces;
- ``builtins.__import__``, ``__builtins__["__import__"]``, ``getattr(__builtins__, "__import__")``:
  ``__import__``; ``__builtins__.__import__("importlib").import_module(name)``: a dynamic import;
- ``getattr(os, computed)``, ``sys.modules[computed]``, ``globals()[computed]``,
  ``vars(builtins).get(computed)``: computed attributes;
- ``operator.attrgetter("system")(os)``, ``operator.methodcaller("system", cmd)(os)``,
  ``os.__getattribute__("system")``, ``object.__getattribute__(os, "system")``: the resolver;
- ``shutil.os.system``, ``from shutil import os``, ``asyncio.subprocess``: re-exported modules;
- ``asyncio.create_subprocess_*``, ``loop.subprocess_exec``, ``concurrent.futures.ProcessPoolExecutor``,
  ``os.posix_spawn*``, ``os.fork*``, ``os.kill*``, ``os.setsid``, ``os.unshare``, ``os.setns``,
  ``signal.pthread_kill``, ``signal.pidfd_send_signal``, ``webbrowser``; ``asyncio.open_connection``,
  ``loop.create_connection``: the default constitution's call and import rules;
- ``importlib.util.spec_from_file_location`` / ``module_from_spec`` / ``*.exec_module`` /
  ``*.load_module``, ``importlib.machinery``, ``importlib.reload``, ``zipimport``, ``imp``,
  ``_imp``, ``timeit.timeit(stmt)``, ``cProfile.run``, ``pdb.run``, ``types.CodeType``: code
  loaded or built at run time (default constitution);
- ``gc.get_objects`` / ``get_referrers``, ``sys._getframe``, ``inspect.currentframe``, ``*.f_globals``,
  ``*.__subclasses__``: the interpreter's internals (default constitution);
- ``io.open("/etc/x")``, ``os.open(b"/x")``, ``open("~/.ssh/id")``, ``open("../../x")``: path literals;
  ``open(os.sep + "etc")``, ``"/" + name``, ``f"/{name}"``, ``Path("/") / "etc"``,
  ``os.path.join("/", ...)``, ``os.path.expanduser("~")``, ``Path.home()``: paths built from a root.

Left to the sandbox, which is the boundary (the review is a first filter that explains itself):
paths built character by character (``chr(47)``), code written to a file at run time and
imported, native code inside a library that wraps it, and threads (``threading``: they are
fine, they share the candidate's limits and die with it).
"""

from __future__ import annotations

import ast
import fnmatch
import itertools
import re
from typing import Optional

from progenitor.agents.safety.allowlist import AllowList
from progenitor.agents.safety.annotations import parse_forward_refs
from progenitor.agents.safety.names import DYNAMIC_IMPORTERS, Resolver, canonical, const_str, normalize
from progenitor.agents.safety.reach import Reach
from progenitor.candidate.findings import Finding, dedupe
from progenitor.task.constitution import Constitution

_ABSOLUTE = re.compile(r"^(/|~/)[\w.~+@-]")
_CLIMBS = re.compile(r"^\.\.(/|\\|$)")
_ROOTS = {"/", "~", "\\"}
_SEPARATORS = {"os.sep", "os.path.sep", "os.altsep", "posixpath.sep", "ntpath.sep"}
_PATH_BUILDERS = {
    "open", "io.open", "os.open", "os.path.join", "posixpath.join", "os.path.abspath", "os.path.realpath",
    "os.path.expanduser", "os.path.expandvars", "os.listdir", "os.scandir", "os.walk", "os.chdir", "os.stat", "glob.glob",
    "glob.iglob", "pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.PurePosixPath",
    "shutil.copy", "shutil.copyfile", "shutil.copytree", "numpy.load", "numpy.save",
}
_HOME = {"pathlib.Path.home", "pathlib.PosixPath.home"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and const_str(body[0].value) is not None:
                ids.add(id(body[0].value))
    return ids


def _because(reason: str) -> str:
    return f": {reason}" if reason else ""


def _literal(node: Optional[ast.AST]) -> Optional[str]:
    """A str or bytes constant as text (bytes as latin-1), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
    return None


class _Checker:
    def __init__(self, path: str, constitution: Constitution, tree: ast.AST, allow: Optional[AllowList]):
        self.path = path
        self.c = constitution
        self.resolve = Resolver(tree)
        self.findings: list[Finding] = []
        # Modules a rule names: a computed attribute of one of them is as unreadable as a computed import.
        self.sensitive = {m.split(".")[0] for rule in constitution.forbidden_imports for m in rule.modules}
        self.sensitive |= {p.split(".")[0] for rule in constitution.forbidden_calls for p in rule.calls
                           if "." in p and not any(ch in p.split(".")[0] for ch in "*?[")}
        self.reach = Reach(constitution, self.resolve, tree, allow, self.sensitive, self.add, self.named_in_literal)

    def add(self, rule: str, severity: str, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(rule=rule, severity=severity, file=self.path,
                                     line=getattr(node, "lineno", None), message=message))

    def _forbidden(self, name: str):
        """(rule, listed module) when ``name`` (dotted, un-aliased here) is or is inside a listed module."""
        name = canonical(name)
        for rule in self.c.forbidden_imports:
            hit = next((m for m in rule.modules if name == m or name.startswith(m + ".")), None)
            if hit:
                return rule, hit
        return None

    def _forbidden_module(self, shown: str, hit, node: ast.AST, how: str) -> None:
        rule, module = hit
        also = f" (that is {module!r})" if not shown.startswith(module) else ""
        self.add("forbidden-import", rule.severity, node,
                 f"{how} {shown!r}{also}, a module the constitution forbids{_because(rule.reason)}")

    def module(self, module: str, node: ast.AST, how: str) -> None:
        """An import of ``module`` (dotted): forbidden if it is, or is inside, a listed module
        under any name, or re-exports one (``asyncio.subprocess``)."""
        parts = module.split(".")
        for i in range(len(parts)):
            hit = self._forbidden(".".join(parts[i:]))
            if hit:
                self._forbidden_module(module, hit, node, how)
                return

    def callable_name(self, name: str, node: ast.AST, how: str) -> None:
        for candidate in (name, *self.resolve.suffixes(name)):
            for rule in self.c.forbidden_calls:
                # A suffix only meets rules that name its module: "model.eval" is not "eval".
                patterns = rule.calls if candidate is name else [p for p in rule.calls
                                                               if p.split(".")[0] == candidate.split(".")[0] and "." in p]
                hit = next((p for p in patterns if fnmatch.fnmatchcase(candidate, p)), None)
                if hit:
                    shown = name.replace("?.", "<object>.")
                    self.add("forbidden-call", rule.severity, node,
                             f"{how} {shown!r}, which the constitution forbids{_because(rule.reason)}")
                    return

    def used_module(self, name: str, node: ast.AST) -> None:
        """A forbidden module reached as an attribute of an imported one (``asyncio.subprocess.PIPE``,
        ``shutil.os``, ``np.ctypeslib``); the import of a forbidden module itself was reported where it is."""
        parts = name.split(".")
        if parts[0] not in self.resolve.imported or self._forbidden(parts[0]):
            return
        for i in range(len(parts)):
            hit = self._forbidden(".".join(parts[i:]))
            if hit:
                self._forbidden_module(".".join(parts[: i + 1]) if i else hit[1], hit, node, "uses")
                return

    def named_in_literal(self, name: str, node: ast.AST) -> None:
        """A dotted name a literal hands an importing resolver (``dictConfig``'s ``'()'``): read as code."""
        name = normalize(name)
        self.module(name, node, "names")
        self.callable_name(name, node, "names")

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
                self.callable_name(normalize(full), node, "imports")

    def star(self, module: str, node: ast.AST) -> None:
        """``from os import *`` hides which names arrive: forbidden if any listed call lives there."""
        module = canonical(module)
        for rule in self.c.forbidden_calls:
            inside = [p for p in rule.calls if p.startswith(module + ".")]
            if inside:
                self.add("forbidden-call", rule.severity, node,
                         f"star-imports {module!r}, which brings in {inside[0]!r}{_because(rule.reason)}")
                return

    def dynamic(self, node: ast.AST) -> None:
        """Imports and attributes whose name only exists at run time."""
        if isinstance(node, ast.Call) and self.resolve.name(node.func) in DYNAMIC_IMPORTERS:
            literal = const_str(node.args[0]) if node.args else None
            if literal is not None:
                self.module(literal, node, "dynamically imports")
                return
            what = "imports a module whose name is computed at run time"
        else:
            namespace = self.resolve.computed_attribute(node, self.sensitive)
            if namespace is None:
                return
            what = f"reads an attribute of {namespace!r} whose name is computed at run time"
        rule = self.c.dynamic_imports
        if rule is not None:
            self.add("dynamic-import", rule.severity, node,
                     f"{what}, which the constitution cannot check{_because(rule.reason)}")

    def _path(self, node: ast.AST, value: str, why: str) -> None:
        rule = self.c.absolute_paths
        if rule is None or any(fnmatch.fnmatchcase(value, allowed) for allowed in rule.allow):
            return
        self.add("absolute-path", rule.severity, node, f"{why}{_because(rule.reason)}")

    def path_literal(self, node: ast.Constant) -> None:
        value = _literal(node) or ""
        if _ABSOLUTE.match(value):
            self._path(node, value, f"names the absolute path {value[:80]!r}, outside its tree")
        elif _CLIMBS.match(value):
            self._path(node, value, f"names the path {value[:80]!r}, which climbs out of its tree")

    def _root(self, node: Optional[ast.AST]) -> bool:
        """Does ``node`` start a path at the root or the home directory: ``"/"``, ``"~"``,
        ``"/%s"``, ``"/{}"``, ``os.sep``?"""
        literal = _literal(node)
        if literal is not None:
            return literal in _ROOTS or (literal[:1] in _ROOTS and literal[1:2] in ("%", "{"))
        return isinstance(node, (ast.Name, ast.Attribute)) and self.resolve.name(node) in _SEPARATORS

    def path_root(self, node: ast.AST) -> None:
        """A path built from the root: ``open(os.sep + "etc")``, ``Path("/")``, ``f"/{x}"``,
        ``"/{}".format(x)``, ``Path.home()``."""
        start: Optional[ast.AST] = None
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            start = node.left
        elif isinstance(node, ast.JoinedStr) and node.values:
            start = node.values[0]
        elif isinstance(node, ast.Call):
            func = self.resolve.name(node.func)
            if func in _HOME:
                self._path(node, "~", "names the home directory, outside its tree")
                return
            if isinstance(node.func, ast.Attribute) and node.func.attr == "format":
                start = node.func.value
            elif func in _PATH_BUILDERS and node.args:
                start = node.args[0]
        if start is not None and self._root(start):
            self._path(node, "/", "builds a path from the filesystem's root, outside its tree")

    def run(self, tree: ast.AST) -> list[Finding]:
        docs = _docstrings(tree)
        refs, broken = parse_forward_refs(tree)  # string annotations are code to typing and pydantic
        for ref in broken:
            self.reach.finding("name-from-data", ref, f"annotates with the string {ref.value[:60]!r}, which typing "
                               "and pydantic evaluate as code but is not an expression", "write the type itself")
        for expr in refs:
            self.reach.adopt(expr)
        for node in itertools.chain(ast.walk(tree), *(ast.walk(expr.body) for expr in refs)):
            self.reach.visit(node)
            self.imports(node)
            if isinstance(node, (ast.Call, ast.Subscript)):
                self.dynamic(node)
            if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Call)):
                if not (isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)):
                    name = self.resolve.name(node)
                    if name:
                        self.callable_name(name, node, "uses")
                        self.used_module(name, node)
            if isinstance(node, (ast.BinOp, ast.JoinedStr, ast.Call)):
                self.path_root(node)
            if _literal(node) is not None and id(node) not in docs:
                self.path_literal(node)
        return sorted(dedupe(self.findings), key=lambda f: f.line or 0)


def check_python(source: bytes, path: str, constitution: Constitution,
                 allow: Optional[AllowList] = None) -> list[Finding]:
    """Every constitution finding in one Python file (``path`` is only used in the findings).

    ``allow``: the import allow-list (``allowlist.allow_list`` with the candidate's own modules);
    None: the constitution's ``allowed_imports.modules`` alone."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        return [Finding(rule="unparsable", severity="high", file=path, line=line,
                        message=f"the file is not valid Python ({getattr(exc, 'msg', exc)}), so it cannot be reviewed")]
    except (RecursionError, MemoryError):
        return [_too_deep(path)]
    rule = constitution.allowed_imports
    if allow is None and rule is not None:
        allow = AllowList(frozenset(rule.modules))
    try:
        return _Checker(path, constitution, tree, allow).run(tree)
    except (RecursionError, MemoryError):  # the candidate's nesting (in its code, or in a string annotation,
        return [_too_deep(path)]            # which the parser refuses with a MemoryError): a finding, never a crash


def _too_deep(path: str) -> Finding:
    return Finding(rule="unparsable", severity="high", file=path,
                   message="the file nests expressions too deeply to be reviewed; write them flatter")
