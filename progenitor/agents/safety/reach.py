"""How candidate code may reach a name: by an import of an allowed module and attributes written
out. The review reads names; every other way to reach one is a finding, whatever it reaches.

The rules (each finding says what was reached, why it is refused, and what to write instead):

- ``unlisted-import``: a module outside the allow-list (``allowlist``), imported by a
  statement or by a resolver given a literal name (``importlib.import_module("pkgutil")``);
- ``dunder-name``: a dunder attribute or name other than the descriptive few
  (``ALLOWED_DUNDER_ATTRIBUTES``): ``__self__``, ``__globals__``, ``__subclasses__``,
  ``__builtins__``, ``__dict__``, ``__class__``, ``__getattribute__`` ... reach builtins,
  globals and every class;
- ``internal-attribute``: frames, code objects, generators and tracebacks (``f_globals``,
  ``gi_frame``, ``tb_frame`` ...), which reach every namespace on the stack;
- ``private-name``: a private name of a module or of another object (``tempfile._os``,
  ``from tempfile import _os``); a class's own (``self._cache``, ``super()._x``) is fine;
- ``module-value``: a module carried as a value (assigned, passed, stored, returned): past
  that point the review no longer knows what ``m.system`` is;
- ``computed-name``: a name computed at run time handed to a resolver (``resolvers``), a
  resolver handed around as a value, a logging configuration built at run time;
- ``name-from-data``: a resolver whose names come from data or the environment (pickle,
  unsafe YAML, ``breakpoint``, ``string.Formatter.get_field`` ...);
- ``import-state``: where imports come from (``sys.path``, ``sys.meta_path``...) and the
  namespaces of every module or global (``sys.modules``, ``globals()``) used other than by a
  literal key.

These rules do not list dangerous spellings: they list the ways a reviewable name is
written, and anything else is reported. A name let through on purpose goes into the
constitution's ``name_access.allow``. The review stays a first filter; the sandbox is the
boundary (see README, "The safety review and the constitution").
"""

from __future__ import annotations

import ast
import re
from typing import Callable, Optional

from progenitor.agents.safety import resolvers
from progenitor.agents.safety.allowlist import AllowList
from progenitor.agents.safety.modules import is_module
from progenitor.agents.safety.names import DYNAMIC_IMPORTERS, Resolver, canonical, const_str
from progenitor.task.constitution import Constitution

ALLOWED_DUNDER_ATTRIBUTES = frozenset({"__init__", "__name__", "__qualname__", "__doc__", "__file__",
                                       "__version__", "__module__", "__annotations__", "__dataclass_fields__",
                                       "__slots__", "__match_args__"})
"""Dunder attributes that describe an object or run its constructor, and reach nothing a dunder-free
name does not (a class's fields and annotations are its own types and values)."""
ALLOWED_DUNDER_NAMES = frozenset({"__name__", "__file__", "__doc__", "__debug__", "__version__", "__all__",
                                  "__package__"})
INTERNAL_ATTRIBUTES = frozenset({"f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace",
                                 "tb_frame", "tb_next", "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame",
                                 "cr_code", "cr_await", "ag_frame", "ag_code", "ag_await"})
PUBLIC_UNDERSCORE = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})
"""Names with an underscore that are a public API (``collections.namedtuple``'s)."""
IMPORT_STATE = frozenset({"sys.path", "sys.meta_path", "sys.path_hooks", "sys.path_importer_cache"})
_NAMESPACE_CALLS = {"globals", "locals", "vars"}
_FIX_DUNDER = "write the public name instead (type(x) for x.__class__, vars(x) for x.__dict__)"
_ALLOW = "or ask a person to add {!r} to the constitution's name_access.allow"

Add = Callable[[str, str, ast.AST, str], None]
Named = Callable[[str, ast.AST], None]


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _private(name: str) -> bool:
    return name.startswith("_") and not _dunder(name) and name not in PUBLIC_UNDERSCORE


def _own_attributes(tree: ast.AST) -> set[int]:
    """Attribute nodes whose object is the enclosing method's own ``self`` or ``cls``, or ``super()``."""
    own = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for method in cls.body:
            if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            params = [*method.args.posonlyargs, *method.args.args]
            static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in method.decorator_list)
            first = params[0].arg if params and not static else None
            for node in ast.walk(method):
                if isinstance(node, ast.Attribute) and (
                        (isinstance(node.value, ast.Name) and node.value.id == first)
                        or (isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                            and node.value.func.id == "super")):
                    own.add(id(node))
    return own


def _shown(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


class Reach:
    """The reach rules for one parsed file; ``visit`` is called on every node."""

    def __init__(self, constitution: Constitution, resolve: Resolver, tree: ast.AST,
                 allow: Optional[AllowList], sensitive: set[str], add: Add, named_in_literal: Named):
        self.access = constitution.name_access
        self.imports_rule = constitution.allowed_imports
        self.allow = allow
        self.let_through = set(self.access.allow) if self.access else set()
        self.dynamic_rule = constitution.dynamic_imports is not None
        self.resolve, self.sensitive, self._add = resolve, sensitive, add
        self.named_in_literal = named_in_literal
        """Called with a dotted name a literal hands an importing resolver, for the deny-list."""
        self.parents = {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        self.own = _own_attributes(tree)

    def adopt(self, expr: ast.Expression) -> None:
        """Review ``expr`` (a parsed string annotation) as part of the file."""
        self.parents.update({id(child): parent for parent in ast.walk(expr) for child in ast.iter_child_nodes(parent)})

    # -- reporting -----------------------------------------------------------------------------
    def finding(self, rule: str, node: ast.AST, what: str, fix: str, name: str = "") -> None:
        if self.access is None:
            return
        reason = f": {self.access.reason}" if self.access.reason else ""
        allow = f", {_ALLOW.format(name)}" if name else ""
        self._add(rule, self.access.severity, node, f"{what}{reason}; {fix}{allow}")

    def let(self, part: str, dotted: Optional[str] = None) -> bool:
        """Does the constitution let ``part`` (an attribute) or ``dotted`` (a full name) through?"""
        if part in self.let_through:
            return True
        return bool(dotted) and any(dotted == a or dotted.startswith(a + ".") for a in self.let_through)

    # -- the walk ------------------------------------------------------------------------------
    def visit(self, node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.imports(node)
        elif isinstance(node, ast.Attribute):
            self.attribute(node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            self.bare_name(node)
        elif isinstance(node, ast.Subscript):
            self.subscript(node)
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, ast.Dict):
            self.factory_keys(node)
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)) and isinstance(node.ctx, ast.Load):
            self.value(node)
        elif isinstance(node, ast.Call):
            self.value(node)

    # -- imports -------------------------------------------------------------------------------
    def imports(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                self.module(a.name, node, "imports")
            return
        assert isinstance(node, ast.ImportFrom)
        if node.level == 0 and node.module:
            self.module(node.module, node, "imports from")
        for a in node.names:
            if a.name != "*":
                self.part(a.name, node, f"{node.module or '.'}.{a.name}", "imports")

    def module(self, module: str, node: ast.AST, how: str) -> None:
        """An absolute import of ``module``: on the allow-list, and no private or dunder part."""
        if module == "__future__":
            return
        parts = module.split(".")
        for i, part in enumerate(parts):
            if self.allow is None or ".".join(parts[: i + 1]) not in self.allow.entries:
                self.part(part, node, module, how)  # a part the allow-list names itself is let through
        rule = self.imports_rule
        if rule is not None and self.allow is not None and not self.allow.allows(module):
            top = module.split(".")[0]
            reason = f": {rule.reason}" if rule.reason else ""
            self._add("unlisted-import", rule.severity, node,
                      f"{how} {module!r}, which is not on the allow-list (the modules the base imports, the "
                      f"libraries it declares and the constitution's allowed_imports){reason}; use a module the "
                      f"base already uses, or ask a person to add {top!r} to allowed_imports.modules")

    def part(self, part: str, node: ast.AST, dotted: str, how: str) -> None:
        """One component of a name written in the source or in a literal: dunder, internal or private."""
        if self.let(part, dotted):
            return
        if _dunder(part) and part not in ALLOWED_DUNDER_ATTRIBUTES | ALLOWED_DUNDER_NAMES:
            self.finding("dunder-name", node, f"{how} {dotted!r}, through the dunder {part!r} (the "
                         "interpreter's internals reach builtins, globals and every class)", _FIX_DUNDER, part)
        elif part in INTERNAL_ATTRIBUTES:
            self.finding("internal-attribute", node, f"{how} {dotted!r}, through {part!r} (frames, code and "
                         "tracebacks reach every namespace on the stack)", "do without it", part)
        elif _private(part):
            self.finding("private-name", node, f"{how} {dotted!r}, through the private name {part!r} of another "
                         "module or object", "use its public API", dotted)

    # -- attributes and names ------------------------------------------------------------------
    def attribute(self, node: ast.Attribute) -> None:
        full = self.resolve.name(node) or ""
        if full in IMPORT_STATE:
            self.finding("import-state", node, f"uses {full!r}, which decides where imports come from",
                         "import only what the tree and the allowed libraries hold", full)
            return
        if id(node) in self.own and _private(node.attr):
            return
        self.part(node.attr, node, _shown(node), "reaches")

    def bare_name(self, node: ast.Name) -> None:
        if _dunder(node.id) and node.id not in ALLOWED_DUNDER_NAMES and not self.let(node.id):
            self.finding("dunder-name", node, f"uses the name {node.id!r} (the interpreter's internals reach "
                         "builtins and every module)", _FIX_DUNDER, node.id)

    def subscript(self, node: ast.Subscript) -> None:
        key = const_str(node.slice)
        if key is not None and (_dunder(key) and key not in ALLOWED_DUNDER_NAMES) and not self.let(key):
            self.finding("dunder-name", node, f"reads the key {key!r} (a namespace's internals)", _FIX_DUNDER, key)
        if key == "()":
            self.finding("computed-name", node, "uses a '()' key, a logging factory that imports and calls a "
                         "name", "configure logging in code", "")

    def value(self, node: ast.AST) -> None:
        """A module, a resolver or a namespace used as a value rather than through a dotted name."""
        name = self.resolve.name(node)
        if name == "sys.modules":
            self.namespace(node, "sys.modules")
            return
        parent = self.parents.get(id(node))
        if (isinstance(parent, ast.Attribute) and parent.value is node) or (
                isinstance(parent, ast.Call) and parent.func is node) or not name or name.startswith("?"):
            return
        if self._probed(node, parent):
            return
        if self.is_module(node, name):
            self.finding("module-value", node, f"uses the module {name!r} as a value (assigned, passed, stored or "
                         "returned), after which the review cannot tell what its attributes are",
                         f"write {name}.<name> where it is used, or import the names you need", name)
        elif resolvers.is_resolver(name):
            self.finding("computed-name", node, f"passes the resolver {name!r} around as a value, which hides the "
                         "names it will be given", "call it where it is written, with a literal name", name)

    def _probed(self, node: ast.AST, parent: Optional[ast.AST]) -> bool:
        """``getattr(os, "O_CLOEXEC", 0)``, ``hasattr(torch, "compile")``: a module asked for one
        literal name, which the review reads like ``os.O_CLOEXEC``."""
        return (isinstance(parent, ast.Call) and bool(parent.args) and parent.args[0] is node
                and self.resolve.name(parent.func) in ("getattr", "hasattr")
                and len(parent.args) >= 2 and const_str(parent.args[1]) is not None)

    def is_module(self, node: ast.AST, name: str) -> bool:
        """Does ``node`` evaluate to a module: an imported name, a dotted name from one, or what a
        resolver or namespace returns for a literal (``import_module("os")``, ``sys.modules["os"]``)?"""
        if isinstance(node, ast.Name) and node.id in self.resolve.modules:
            return True
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id not in self.resolve.aliases:
            return False  # a local name: the review does not track what it holds
        if isinstance(root, (ast.Call, ast.Subscript)) and not self._from_import(root, name):
            return False
        return is_module(canonical(name))

    def _from_import(self, node: ast.AST, name: str) -> bool:
        """Is what ``node`` names rooted in an imported module, an import or a namespace of modules?"""
        if name.split(".")[0] in self.resolve.imported:
            return True
        if isinstance(node, ast.Call):
            func = self.resolve.name(node.func) or ""
            return func in DYNAMIC_IMPORTERS or func in resolvers.NAMED_BY_ARGUMENT or func.endswith(".get")
        return isinstance(node, ast.Subscript)

    def namespace(self, node: ast.AST, shown: str) -> None:
        """``sys.modules`` or ``globals()``: read by a literal key, or it is every module or global at once."""
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Subscript) and parent.value is node and isinstance(parent.ctx, ast.Load):
            key = parent.slice
            if const_str(key) is not None or (isinstance(key, ast.Name) and key.id == "__name__"):
                return
            if self.dynamic_rule:
                return  # a computed key: the dynamic-import rule reports it
        if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr == "get":
            call = self.parents.get(id(parent))
            if isinstance(call, ast.Call) and call.args and const_str(call.args[0]) is not None:
                return
        self.finding("import-state", node, f"uses {shown} other than by a literal key, which reaches every module "
                     "or global at once", "name the module or global you need", shown)

    # -- calls ---------------------------------------------------------------------------------
    def call(self, node: ast.Call) -> None:
        func = self.resolve.name(node.func) or ""
        if func in _NAMESPACE_CALLS and not node.args:
            self.namespace(node, f"{func}()")
        if func in resolvers.NAMED_BY_ARGUMENT:
            self.named(func, node)
        why = (resolvers.named_by_data(func) or resolvers.conditional(func, node, self.resolve.name)
               if self._known(node.func, func) else None)
        if why:
            self.finding("name-from-data", node, f"calls {func.replace('?.', '<object>.')!r}: {why}, which no "
                         "review can read", "store arrays with numpy, tensors with safetensors and settings with "
                         "json or yaml.safe_load", "")
        if func == "logging.config.dictConfig":
            self.dict_config(node)

    def _known(self, func_node: ast.AST, func: str) -> bool:
        """Is ``func`` what its name says: a builtin, an imported name, a method of an unknown object
        (``?.get_field``), not a local variable that happens to be called ``yaml``?"""
        if "." not in func or func.startswith("?."):
            return True
        root = func_node
        while isinstance(root, ast.Attribute):
            root = root.value
        return not isinstance(root, ast.Name) or root.id in self.resolve.aliases

    def named(self, func: str, node: ast.Call) -> None:
        """A resolver whose name is an argument: a literal is read like code, anything else is a finding."""
        # A computed name the dynamic-import rule reports already (an import, a namespace's attribute):
        reported = self.dynamic_rule and (func in DYNAMIC_IMPORTERS or self.resolve.computed_attribute(
            node, self.sensitive) is not None)
        own = bool(node.args) and isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls")
        on = ""
        if resolvers.NAMED_BY_ARGUMENT[func][0] == 1 and node.args:  # getattr(x, name): say what x is
            on = f" on {(self.resolve.name(node.args[0]) or _shown(node.args[0])).replace('?.', '<object>.')!r}"
        for arg in resolvers.name_arguments(func, node):
            literal = const_str(arg)
            if literal is None and not reported:
                self.finding("computed-name", node, f"hands {func!r} a name computed at run time{on}, which the "
                             "review cannot read", "write the name out, or choose from a dict of the allowed values")
            elif literal is not None:
                self.literal(func, literal, node, own)

    def literal(self, func: str, literal: str, node: ast.AST, own: bool = False) -> None:
        for part in filter(None, re.split(r"[.:]", literal)):
            if not (own and _private(part)):
                self.part(part, node, literal, f"hands {func!r} the name")
        module = resolvers.literal_module(func, literal)
        if module and module.replace(".", "").isidentifier():
            self.module(module, node, f"imports (through {func!r})")
            self.named_in_literal(literal.replace(":", "."), node)  # the deny-list reads it as code too

    def dict_config(self, node: ast.Call) -> None:
        config = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "config"), None)
        literals = (ast.Constant, ast.Dict, ast.List, ast.Tuple, ast.Set)
        built = config is None or not isinstance(config, ast.Dict) or any(
            not isinstance(n, literals + (ast.expr_context,)) for n in ast.walk(config))
        if built:
            self.finding("computed-name", node, "hands logging.config.dictConfig a configuration built at run time; "
                         "its '()', 'class' and 'ext://' entries import and call names", "write the configuration "
                         "as a literal dict, or configure logging in code")
            return
        for sub in (n for n in ast.walk(config) if isinstance(n, ast.Dict)):
            for key, value in zip(sub.keys, sub.values):
                text = const_str(value)
                if text is not None and (const_str(key) == "class" or text.startswith("ext://")):
                    self.literal("pydoc.locate", text.removeprefix("ext://"), node)

    def factory_keys(self, node: ast.Dict) -> None:
        """A ``'()'`` key: logging's dict configuration imports and calls the name it holds."""
        for key, value in zip(node.keys, node.values):
            if const_str(key) != "()":
                continue
            text = const_str(value)
            if text is None:
                self.finding("computed-name", node, "gives a logging factory key ('()') a name computed at run "
                             "time", "configure logging in code")
            else:
                self.literal("pydoc.locate", text, node)
