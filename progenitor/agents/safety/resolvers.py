"""Resolvers: the functions that turn a string into an object. They are how a name reaches code
past a review that reads names, so the review knows them all by kind, not by spelling.

- ``NAMED_BY_ARGUMENT``: the name is an argument (``getattr(x, name)``, ``import_module(name)``,
  ``pkgutil.resolve_name(name)``, ``pydoc.locate(name)``, ``operator.attrgetter(name)``...). A
  literal name is read like code (its module must be on the allow-list, its parts may not be
  dunders or private); a name computed at run time is a ``computed-name`` finding.
- ``NAMED_BY_DATA``: the names come from data or the environment, never from the source:
  the pickle family, YAML's unsafe loaders, ``breakpoint`` (it calls whatever
  ``PYTHONBREAKPOINT`` names), ``help``, logging's file and socket configurators,
  ``string.Formatter.get_field``. Any call is a ``name-from-data`` finding. Some are resolvers
  only with an argument (``allow_pickle=True``, ``weights_only=False`` or ``pickle_module=`` on
  any loader, ``yaml.load`` with a loader other than a safe one): ``conditional``.
- logging's ``dictConfig``: a ``'()'`` key (a factory), a ``'class'`` key and an ``ext://``
  value name objects to import and call, so the configuration must be a literal whose names
  are read like code, and a ``'()'`` key anywhere is read so too.

A resolver handed around as a value (``functools.reduce(getattr, ...)``, ``g = getattr``)
hides its arguments, so that is a finding too.
"""

from __future__ import annotations

import ast
import fnmatch
from typing import Optional

NAMED_BY_ARGUMENT: dict[str, tuple[int, str]] = {
    "getattr": (1, "attribute"), "setattr": (1, "attribute"), "delattr": (1, "attribute"),
    "object.__getattribute__": (1, "attribute"), "type.__getattribute__": (1, "attribute"),
    "__import__": (0, "module"), "importlib.import_module": (0, "module"), "importlib.__import__": (0, "module"),
    "pkgutil.resolve_name": (0, "object"), "pydoc.locate": (0, "object"), "pydoc.resolve": (0, "object"),
    "operator.attrgetter": (-1, "attribute"), "operator.methodcaller": (0, "attribute"),
}
"""Resolver -> (the argument that holds the name, -1: every positional one; what it names)."""

NAMED_BY_DATA: dict[str, str] = {
    "pickle.load*": "pickle calls whatever its data names",
    "pickle.Unpickler": "pickle calls whatever its data names",
    "_pickle.*": "pickle calls whatever its data names",
    "shelve.open": "shelve unpickles whatever its file holds",
    "dill.load*": "dill calls whatever its data names", "cloudpickle.load*": "cloudpickle calls whatever its data names",
    "joblib.load": "joblib unpickles whatever its file holds", "pandas.read_pickle": "it unpickles whatever its file holds",
    "jsonpickle.decode": "jsonpickle builds whatever its data names",
    "yaml.unsafe_load*": "the unsafe YAML loader calls whatever its data names",
    "yaml.full_load*": "the full YAML loader reaches any imported name its data names",
    "yaml.UnsafeLoader": "the unsafe YAML loader calls whatever its data names",
    "yaml.FullLoader": "the full YAML loader reaches any imported name its data names",
    "yaml.Loader": "the YAML Loader calls whatever its data names", "yaml.CLoader": "the YAML Loader calls whatever its data names",
    "yaml.CUnsafeLoader": "the unsafe YAML loader calls whatever its data names",
    "yaml.CFullLoader": "the full YAML loader reaches any imported name its data names",
    "breakpoint": "breakpoint() calls whatever PYTHONBREAKPOINT names",
    "sys.breakpointhook": "the breakpoint hook calls whatever PYTHONBREAKPOINT names",
    "help": "help() imports whatever its argument names and runs a pager",
    "logging.config.fileConfig": "logging's file configuration imports and calls the names in its file",
    "logging.config.listen": "logging's socket configuration imports and calls the names it receives",
    "logging.config.*Configurator": "logging's configurators import and call the names they are given",
    "importlib.metadata.*": "entry points import and return whatever their data names",
    "torch.package.*": "torch.package imports the code and unpickles the objects its archive holds",
    "doctest.*": "doctest runs the code in its strings", "trace.*": "trace runs the code in its strings",
    "*.get_field": "string.Formatter.get_field reaches any attribute path its string names",
}
"""Resolvers whose names never appear in the source (globs; ``*`` spans dots) -> why."""

SAFE_YAML_LOADERS = {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader", "yaml.CBaseLoader"}


def _keyword(call: ast.Call, name: str, position: Optional[int] = None) -> Optional[ast.AST]:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    if position is not None and len(call.args) > position:
        return call.args[position]
    return None


def _is_constant(node: Optional[ast.AST], value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def conditional(func: str, call: ast.Call, name_of) -> Optional[str]:
    """Why a call of ``func`` that is a resolver only with some arguments is one here, or None.
    ``name_of`` resolves an expression to its dotted name."""
    if func in ("yaml.load", "yaml.load_all"):
        loader = _keyword(call, "Loader", 1)
        if loader is None or name_of(loader) not in SAFE_YAML_LOADERS:
            return "yaml.load with a loader other than yaml.SafeLoader calls whatever its data names"
    allow = _keyword(call, "allow_pickle", 2 if func == "numpy.load" else None)
    if allow is not None and not _is_constant(allow, False):
        return ("allow_pickle pickles (or, loading, unpickles) whatever the array holds"
                if func == "numpy.save" else "a loader with allow_pickle unpickles whatever its file holds")
    weights = _keyword(call, "weights_only")
    if weights is not None and not _is_constant(weights, True):
        return "a loader without weights_only=True unpickles whatever its file holds"
    if _keyword(call, "pickle_module") is not None:
        return "a loader given a pickle module calls whatever its file names"
    return None


def named_by_data(func: str) -> Optional[str]:
    """Why ``func`` (a dotted name) takes its names from data, or None."""
    for pattern, why in NAMED_BY_DATA.items():
        if fnmatch.fnmatchcase(func, pattern):
            return why
    return None


def is_resolver(func: str) -> bool:
    return func in NAMED_BY_ARGUMENT or named_by_data(func) is not None


_KEYWORDS = {"importlib.import_module": "name", "__import__": "name", "pkgutil.resolve_name": "name",
             "pydoc.locate": "path", "pydoc.resolve": "thing"}


def name_arguments(func: str, call: ast.Call) -> list[ast.AST]:
    """The arguments of a ``NAMED_BY_ARGUMENT`` call that hold names; an unpacked argument
    (``getattr(*pair)``) is one, whatever it holds."""
    index, _ = NAMED_BY_ARGUMENT[func]
    unpacked = [a for a in call.args if isinstance(a, ast.Starred)]
    unpacked += [kw.value for kw in call.keywords if kw.arg is None]
    if index < 0:
        return [a for a in call.args if not isinstance(a, ast.Starred)] + unpacked
    value = _keyword(call, _KEYWORDS[func], index) if func in _KEYWORDS else None
    if value is None and len(call.args) > index and not any(isinstance(a, ast.Starred) for a in call.args[:index + 1]):
        value = call.args[index]
    return ([value] if value is not None else []) + unpacked


def literal_module(func: str, name: str) -> Optional[str]:
    """The module a literal name given to an importing resolver imports (None: it imports nothing)."""
    kind = NAMED_BY_ARGUMENT[func][1] if func in NAMED_BY_ARGUMENT else "object"
    if kind == "attribute":
        return None
    if kind == "module":
        return name
    return name.split(":", 1)[0] if ":" in name else name.split(".", 1)[0]
