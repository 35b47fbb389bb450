"""The review by allow-list: what candidate code may import, and how it may reach a name."""

from __future__ import annotations

from pathlib import Path

import pytest

from progenitor.agents.safety.allowlist import AllowList, allow_list, declared_dists, import_names, local_modules
from progenitor.agents.safety.code_check import check_python
from progenitor.agents.safety.modules import is_module
from progenitor.errors import UserError
from progenitor.task.constitution import (
    DEFAULT_ALLOWED_MODULES,
    Constitution,
    default_constitution,
    parse_constitution,
)

DEFAULT = default_constitution()
BASE = AllowList(frozenset(DEFAULT_ALLOWED_MODULES) | {"numpy", "torch", "yaml", "sklearn"})


def found(code: str, constitution: Constitution = DEFAULT, allow: AllowList = BASE) -> list[tuple[str, int, str]]:
    return [(f.rule, f.line, f.message) for f in check_python(code.encode(), "train.py", constitution, allow)]


def rules(code: str, **kw) -> list[str]:
    return sorted({r for r, _, _ in found(code, **kw)})


# --- the allow-list of imports ----------------------------------------------------------------

def test_the_template_lists_the_default_modules():
    assert tuple(DEFAULT.allowed_imports.modules) == DEFAULT_ALLOWED_MODULES
    assert Constitution().allowed_imports.modules == list(DEFAULT_ALLOWED_MODULES)


@pytest.mark.loop
def test_base_imports_and_declared_libraries_are_allowed(tmp_path: Path):
    (tmp_path / "train.py").write_text("import numpy as np\nfrom sklearn.neural_network import MLPClassifier\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.py").write_text("def f():\n    import scipy.stats\n")
    (tmp_path / "requirements.txt").write_text("# deps\nscikit-learn>=1.3\nPyYAML>=6 ; python_version > '3'\n"
                                               "-r other.txt\n--index-url x\nsafetensors\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "m"\ndependencies = ["einops>=0.7"]\n')
    allowed = allow_list(DEFAULT, tmp_path)
    for module in ("numpy", "numpy.linalg", "sklearn.linear_model", "scipy.stats", "yaml", "safetensors.torch",
                   "einops", "math", "os.path"):
        assert allowed.allows(module), module
    for module in ("pickle", "pkgutil", "pydoc", "inspect", "importlib", "torch", "scipyx"):
        assert not allowed.allows(module), module


def test_from_base_and_from_requirements_can_be_turned_off(tmp_path: Path):
    (tmp_path / "train.py").write_text("import numpy\n")
    (tmp_path / "requirements.txt").write_text("pyyaml\n")
    c = parse_constitution("allowed_imports: {modules: [math], from_base: false, from_requirements: false}", "c")
    allowed = allow_list(c, tmp_path)
    assert allowed.allows("math") and not allowed.allows("numpy") and not allowed.allows("yaml")
    assert allow_list(parse_constitution("allowed_imports: null", "c"), tmp_path) is None


def test_a_changed_base_is_read_again(tmp_path: Path):
    (tmp_path / "train.py").write_text("import numpy\n")
    assert not allow_list(DEFAULT, tmp_path).allows("pandas")
    (tmp_path / "train.py").write_text("import numpy\nimport pandas\n")
    assert allow_list(DEFAULT, tmp_path).allows("pandas")


def test_distribution_names_map_to_import_names():
    assert import_names("scikit-learn") == {"sklearn"} and "yaml" in import_names("PyYAML")
    assert import_names("some-unknown-dist") == {"some_unknown_dist"}


def test_a_linked_manifest_is_not_read(tmp_path: Path):
    (tmp_path / "elsewhere.txt").write_text("requests\n")
    (tmp_path / "requirements.txt").symlink_to(tmp_path / "elsewhere.txt")
    assert declared_dists(tmp_path) == set()


def test_globs_and_dotted_entries():
    allowed = AllowList(frozenset({"torch._dynamo", "my_*"}))
    assert allowed.allows("torch._dynamo.config") and allowed.allows("my_lib.x")
    assert not allowed.allows("torch") and not allowed.allows("torch._C")


def test_the_candidates_own_modules_are_allowed(tmp_path: Path):
    (tmp_path / "model.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "blocks.py").write_text("")
    (tmp_path / "linked").symlink_to(tmp_path / "src")
    assert {"model", "pkg", "src", "blocks"} <= local_modules(tmp_path, "src")
    assert "blocks" not in local_modules(tmp_path, "") and "blocks" not in local_modules(tmp_path, "linked")


@pytest.mark.parametrize("code, module", [
    ("import pkgutil", "pkgutil"),
    ("from pydoc import locate", "pydoc"),
    ("import importlib\nimportlib.import_module('pickle')", "importlib"),
    ("import numpy\n__import__('inspect')", "inspect"),
    ("import pkgutil as p", "pkgutil"),
])
def test_an_import_outside_the_allow_list_is_a_finding_that_says_what_to_do(code, module):
    hits = [(line, msg) for rule, line, msg in found(code) if rule == "unlisted-import"]
    assert hits, found(code)
    line, message = hits[0]
    assert line >= 1 and f"'{module}'" in message and "allowed_imports.modules" in message


def test_an_unlisted_import_has_the_allow_lists_severity_and_reason():
    c = parse_constitution("allowed_imports: {modules: [os], severity: medium, reason: ask first}", "c")
    [f] = check_python(b"import json", "m.py", c)
    assert (f.rule, f.severity) == ("unlisted-import", "medium") and ": ask first;" in f.message


# --- how names may be reached -----------------------------------------------------------------

@pytest.mark.parametrize("code, rule, says", [
    ("print.__self__", "dunder-name", "'__self__'"),
    ("f.__globals__", "dunder-name", "'__globals__'"),
    ("object.__subclasses__()", "dunder-name", "'__subclasses__'"),
    ("x = __builtins__", "dunder-name", "'__builtins__'"),
    ("self.__class__.__name__", "dunder-name", "type(x) for x.__class__"),
    ("import os\nos.__getattribute__('system')", "dunder-name", "'__getattribute__'"),
    ("d['__builtins__']", "dunder-name", "'__builtins__'"),
    ("getattr(x, '__dict__')", "dunder-name", "'__dict__'"),
    ("frame.f_back.f_locals", "internal-attribute", "'f_back'"),
    ("e.__traceback__.tb_frame", "internal-attribute", "'tb_frame'"),
    ("import tempfile\ntempfile._os", "private-name", "'tempfile._os'"),
    ("from tempfile import _os", "private-name", "'_os'"),
    ("import torch._C", "private-name", "'_C'"),
    ("model._orig_mod", "private-name", "'_orig_mod'"),
    ("import os\nm = os", "module-value", "uses the module 'os' as a value"),
    ("import os\nf(os)", "module-value", "'os'"),
    ("from torch import nn\nlayers = [nn]", "module-value", "'torch.nn'"),
    ("import os\np = os.path", "module-value", "'os.path'"),
    ("getattr(obj, name)", "computed-name", "on 'obj'"),
    ("setattr(cfg, key, value)", "computed-name", "'setattr'"),
    ("import torch.nn as nn\ngetattr(nn, cfg.activation)", "computed-name", "dict of the allowed values"),
    ("import operator\noperator.attrgetter(path)", "computed-name", "'operator.attrgetter'"),
    ("import functools\nfunctools.reduce(getattr, names, obj)", "computed-name", "resolver 'getattr' around"),
    ("getattr(*pair)", "computed-name", "computed at run time"),
    ("cfg = {'()': factory}", "computed-name", "'()'"),
    ("import logging.config\nlogging.config.dictConfig(cfg)", "computed-name", "built at run time"),
    ("import logging.config\nlogging.config.dictConfig({'handlers': {'h': {'class': 'os.system'}}})",
     "forbidden-call", "'os.system'"),
    ("import logging.config\nlogging.config.fileConfig('log.ini')", "name-from-data", "file configuration"),
    ("import yaml\nyaml.load(text, Loader=yaml.Loader)", "name-from-data", "yaml.load"),
    ("import yaml\nyaml.unsafe_load(text)", "name-from-data", "unsafe YAML"),
    ("import numpy as np\nnp.load(path, allow_pickle=True)", "name-from-data", "allow_pickle"),
    ("import torch\ntorch.load(path, weights_only=False)", "name-from-data", "weights_only"),
    ("breakpoint()", "name-from-data", "PYTHONBREAKPOINT"),
    ("import string\nstring.Formatter().get_field(f, a, k)", "name-from-data", "get_field"),
    ("import sys\nsys.path.insert(0, d)", "import-state", "'sys.path'"),
    ("import sys\nfor m in sys.modules.values(): pass", "import-state", "sys.modules"),
    ("import sys\nsys.modules['x'] = m", "import-state", "sys.modules"),
    ("globals().update(cfg)", "import-state", "globals()"),
])
def test_each_way_round_a_name_is_a_finding_that_explains_itself(code, rule, says):
    hits = [(line, msg) for r, line, msg in found(code) if r == rule]
    assert any(says in msg for _, msg in hits), found(code)
    assert all(line and (";" in msg or rule.startswith("forbidden")) for line, msg in hits), hits


@pytest.mark.parametrize("code", [
    "import argparse\nif __name__ == '__main__':\n    print(__doc__, __file__)",
    "class M:\n    def __init__(self):\n        super().__init__()\n        self._cache = {}\n"
    "    def f(self):\n        return self._cache, self.__dict_like, super()._hook()\n"
    "    @classmethod\n    def g(cls):\n        return cls._registry",
    "import collections\nP = collections.namedtuple('P', 'a b')\np = P(1, 2)._replace(a=3)\nprint(p._asdict(), P._fields)",
    "import numpy as np\nprint(np.__version__, type(x).__name__, f.__qualname__, m.__module__)",
    "import torch\nfrom torch import nn\nclass Net(nn.Module):\n    pass\nx = torch.zeros(3, dtype=torch.float32)",
    "import torch.nn.functional as F\ny = F.relu(x)",
    "import sys\nsys.modules[__name__]\nsys.modules.get('numpy')\nsys.exit(0)",
    "getattr(args, 'lr', 0.1)\nhasattr(model, 'fit')\nsetattr(cfg, 'lr', 0.1)",
    "import numpy as np\nnp.load(path)\nnp.load(path, allow_pickle=False)",
    "import torch\ntorch.load(path)\ntorch.load(path, weights_only=True)",
    "import yaml\nyaml.safe_load(text)\nyaml.load(text, Loader=yaml.SafeLoader)",
    "import logging\nlog = logging.getLogger(__name__)\nlogging.basicConfig(level=logging.INFO)",
    "import json, os\nwith open(os.path.join(out, 'x.json'), 'w') as f:\n    json.dump(vars(args), f)",
    "from __future__ import annotations\nimport dataclasses\n@dataclasses.dataclass\nclass C:\n    a: int = 0",
    "d = {'class': 'cat', 'ext': 1}\nkey = d['class']",
    "import os, torch\nflag = getattr(os, 'O_CLOEXEC', 0)\nif hasattr(torch, 'compile'):\n    pass",
    "def load(text):\n    yaml = make_parser()\n    return yaml.load(text)",
    "import dataclasses\n@dataclasses.dataclass\nclass C:\n    a: int = 0\nC(**{k: v[k] for k in C.__dataclass_fields__})",
])
def test_honest_code_reaches_its_names_without_a_finding(code):
    assert found(code) == []


def test_a_method_called_with_another_self_is_still_seen():
    # A private attribute through a method's own parameter is fine, but handing the method a
    # module is a module carried as a value.
    code = "import tempfile\nclass A:\n    def go(self):\n        return self._os\nA.go(tempfile).system('x')"
    assert rules(code) == ["module-value"]


def test_a_staticmethods_first_parameter_is_not_self():
    assert rules("class A:\n    @staticmethod\n    def go(m):\n        return m._os") == ["private-name"]


def test_names_let_through_by_the_constitution():
    c = parse_constitution("name_access: {allow: [torch._dynamo, __class__, _orig_mod]}", "c")
    code = "import torch._dynamo\ntorch._dynamo.config.x = 1\nt = type(self).__class__\nm = model._orig_mod"
    assert found(code, constitution=c) == []
    assert rules("import torch._inductor", constitution=c) == ["private-name"]


def test_the_reach_rules_have_the_constitutions_severity_and_can_be_off():
    c = parse_constitution("name_access: {severity: low, reason: be careful}", "c")
    [f] = check_python(b"print.__self__", "m.py", c)
    assert (f.rule, f.severity) == ("dunder-name", "low") and ": be careful;" in f.message
    assert check_python(b"print.__self__", "m.py", parse_constitution("name_access: null", "c")) == []


@pytest.mark.parametrize("text, where", [
    ("allowed_imports: {modules: ['not a module']}", "'allowed_imports.modules'"),
    ("name_access: {allow: ['x y']}", "'name_access.allow'"),
    ("allowed_imports: {from_bass: true}", "'allowed_imports.from_bass'"),
])
def test_a_broken_allow_list_is_one_sentence(text, where):
    with pytest.raises(UserError, match=where):
        parse_constitution(text, "c.yaml")


def test_what_is_a_module_is_read_from_files():
    assert is_module("os") and is_module("os.path") and is_module("logging.config") and is_module("numpy.random")
    assert not is_module("os.system") and not is_module("numpy.float32") and not is_module("no_such_module_x")


@pytest.mark.parametrize("source", [
    b"import os\nx = os" + b".b" * 5000 + b"._p\n",
    b"x = " + b"-" * 100_000 + b"1\n",
    # the same nesting inside a string annotation, which the review parses as the code it is to typing
    b"x: '" + b"-" * 200_000 + b"1' = 1\n",
    b"x: 'a" + b".b" * 100_000 + b"' = 1\n",
    b"def f(y: '" + b"not " * 100_000 + b"y'): pass\n",
])
def test_code_nested_too_deeply_is_a_finding_not_a_crash(source):
    assert {f.rule for f in check_python(source, "train.py", DEFAULT)} == {"unparsable"}


# --- the shipped examples ---------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.loop
@pytest.mark.parametrize("example", ["charlm", "digits"])
def test_a_shipped_examples_base_has_no_findings(example: str):
    """A run starts with the base's findings as context: the examples' own code, which every
    candidate inherits, gives none under their constitution or the default one (bandit on)."""
    from progenitor.agents.safety.reviewer import base_findings, check_task
    from progenitor.task.spec import load_spec

    base = EXAMPLES / example
    spec = load_spec(base)
    constitution, task = check_task(spec, base)
    assert spec.safety.bandit and not task
    for rules_ in (constitution, DEFAULT):
        assert [(f.rule, f.file, f.line, f.message) for f in base_findings(spec, base, rules_)] == []
    own = {k: v for k, v in constitution.model_dump().items() if k != "forbidden_text"}
    assert own == {k: v for k, v in DEFAULT.model_dump().items() if k != "forbidden_text"}, \
        "the example's constitution is the default's, but for the text it forbids"
