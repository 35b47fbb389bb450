"""Spellings of "run a command" that an attacker would try on the static review, as data.

Each probe is a few lines a candidate appends to its training script. Run as a script, every
one of them really starts ``CMD`` (``test_review_probes`` runs them all, on this machine, and
checks the marker each leaves), so none is a strawman. The first nine are the ones issue 18
found running ``os.system`` with zero findings under the default constitution with bandit
on; the rest are their siblings, invented as an attacker would: the same reach by another
resolver, another namespace, another way of carrying a module around, another loader.

``CMD`` is defined by the harness (a shell command without an absolute path, so that the
absolute-path rule, which would flag a literal ``/tmp/...``, does not catch a probe by accident).
``needs`` names a library a probe imports that is not in the standard library (the run check
skips a probe whose library is missing from the host; the review check never does).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    name: str
    code: str
    needs: tuple[str, ...] = ()
    runs: bool = True
    """False: the spelling is only reviewed, never run here (it would compile or fetch)."""


def _p(name: str, code: str, *needs: str, runs: bool = True) -> Probe:
    return Probe(name, code, needs, runs)


PICKLE = "b\"cos\\nsystem\\n(V\" + CMD.encode() + b\"\\ntR.\""
"""A pickle that calls os.system(CMD) when loaded (built at run time, as an attacker would)."""

PROBES: list[Probe] = [
    # -- the nine of issue 18 ---------------------------------------------------------------
    _p("bound-method-self", "print.__self__.__import__('os').system(CMD)"),
    _p("pkgutil-resolve-name", "import pkgutil\npkgutil.resolve_name('os:system')(CMD)"),
    _p("pydoc-locate", "import pydoc\npydoc.locate('os.system')(CMD)"),
    _p("logging-factory", "import logging.config\nlogging.config.dictConfig({'version': 1, 'formatters': "
       "{'f': {'()': 'os.system', 'command': CMD}}})"),
    _p("formatter-get-field", "import os, string\nstring.Formatter().get_field('0.system', [os], {})[0](CMD)"),
    _p("private-reexport", "import tempfile\ntempfile._os.system(CMD)"),
    _p("pydoc-pipepager", "import pydoc\npydoc.pipepager('', CMD)"),
    _p("numpy-ctypes-loader", "import numpy as np\nroot = np.__file__\nwhile root != os.path.dirname(root):\n"
       "    root = os.path.dirname(root)\nlibc = np.ctypeslib.load_library('libc.so.6', os.path.join(root, 'lib', "
       "'x86_64-linux-gnu'))\nlibc.system(CMD.encode())", "numpy"),
    _p("reduce-getattr", "import functools\nfunctools.reduce(getattr, ['system'], os)(CMD)"),
    # -- a module carried around as a value --------------------------------------------------
    _p("module-alias", "o = os\no.system(CMD)"),
    _p("module-argument", "def run(m, c):\n    return m.system(c)\nrun(os, CMD)"),
    _p("module-in-list", "[os][0].system(CMD)"),
    _p("module-default-argument", "def run(c, m=os):\n    return m.system(c)\nrun(CMD)"),
    _p("module-walrus", "(m := os).system(CMD)"),
    _p("module-class-attribute", "class K:\n    m = os\nK.m.system(CMD)"),
    _p("module-setattr", "import json\nsetattr(json, 'helper', os)\njson.helper.system(CMD)"),
    _p("module-returned", "def mod():\n    return os\nmod().system(CMD)"),
    _p("dotted-module-alias", "p = os.path\np.os.system(CMD)"),
    _p("sys-modules-values", "import sys\n[m for m in list(sys.modules.values()) if getattr(m, '__name__', '') == 'posix']"
       "[0].system(CMD)"),
    _p("import-module-value", "import importlib\nm = importlib.import_module('os')\nm.system(CMD)"),
    _p("sys-modules-literal-value", "import sys\nj = sys.modules['os']\nj.system(CMD)"),
    _p("reexport-value", "import shutil\nx = shutil.os\nx.system(CMD)"),
    _p("getattr-literal-module", "import shutil\nm = getattr(shutil, 'os')\nm.system(CMD)"),
    _p("global-module", "def keep():\n    global held\n    held = os\nkeep()\nheld.system(CMD)"),
    _p("match-module", "match os:\n    case m:\n        m.system(CMD)"),
    _p("exception-carries-module", "try:\n    raise RuntimeError(os)\nexcept RuntimeError as e:\n"
       "    e.args[0].system(CMD)"),
    # -- modules re-exported by allowed ones --------------------------------------------------
    _p("reexport-through-sys", "import yaml\nyaml.constructor.sys.modules['os'].system(CMD)", "yaml"),
    _p("reexport-glob-os", "import glob\nglob.os.system(CMD)"),
    _p("reexport-numpy-ctypes", "import numpy as np\nnp.ctypeslib.ctypes.CDLL(None).system(CMD.encode())", "numpy"),
    _p("private-random-os", "import random\nrandom._os.system(CMD)"),
    _p("private-import", "from tempfile import _os as helpers\nhelpers.system(CMD)"),
    # -- dunders, frames and the interpreter's internals -------------------------------------
    _p("getattr-literal-dunder", "getattr(getattr(print, '__self__'), '__import__')('os').system(CMD)"),
    _p("function-globals", "import tempfile\ntempfile.mkdtemp.__globals__['_os'].system(CMD)"),
    _p("subclasses-walk", "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings'][0]()"
       "._module.sys.modules['os'].system(CMD)"),
    _p("type-getattribute", "type(os).__getattribute__(os, 'system')(CMD)"),
    _p("generator-frame", "g = (x for x in [0])\ng.gi_frame.f_builtins['__import__']('os').system(CMD)"),
    _p("traceback-frame", "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    t = e.__traceback__\n"
       "t.tb_frame.f_globals['os'].system(CMD)"),
    _p("builtins-name", "__builtins__.__dict__['__import__']('os').system(CMD)"),
    _p("vars-of-builtin", "vars(len.__self__)['__import__']('os').system(CMD)"),
    # -- names computed at run time, handed to a resolver ------------------------------------
    _p("getattr-computed", "getattr(os, ''.join(map(chr, [115, 121, 115, 116, 101, 109])))(CMD)"),
    _p("getattr-on-holder", "class H:\n    pass\nh = H()\nh.m = os\ngetattr(h.m, 'sys' + 'tem')(CMD)"),
    _p("getattr-as-value", "g = getattr\ng(os, 'sys' + 'tem')(CMD)"),
    _p("map-getattr", "list(map(getattr, [os], ['system']))[0](CMD)"),
    _p("attrgetter-computed", "import operator\noperator.attrgetter('sys' + 'tem')(os)(CMD)"),
    _p("methodcaller-computed", "import operator\noperator.methodcaller('sys' + 'tem', CMD)(os)"),
    _p("import-module-computed", "import importlib\nimportlib.import_module('o' + 's').system(CMD)"),
    _p("import-module-private", "import importlib\nimportlib.import_module('tempfile')._os.system(CMD)"),
    _p("pkgutil-computed", "import pkgutil\npkgutil.resolve_name(':'.join(['os', 'system']))(CMD)"),
    _p("pydoc-locate-computed", "import pydoc\npydoc.locate('.'.join(['os', 'system']))(CMD)"),
    _p("logging-factory-computed", "import logging.config\nconfig = {'version': 1, 'formatters': {'f': "
       "{'()': '.'.join(['os', 'system']), 'command': CMD}}}\nlogging.config.dictConfig(config)"),
    _p("logging-resolve", "import logging.config\nlogging.config.BaseConfigurator({}).resolve('os.system')(CMD)"),
    _p("formatter-computed", "import string\nstring.Formatter().get_field('0.' + 'system', [os], {})[0](CMD)"),
    _p("entry-point-load", "from importlib.metadata import EntryPoint\nEntryPoint('x', 'os:system', 'g').load()(CMD)"),
    _p("breakpoint-hook", "os.environ['PYTHONBREAKPOINT'] = 'os.system'\nbreakpoint(CMD)"),
    _p("sys-modules-computed", "import sys\nsys.modules['o' + 's'].system(CMD)"),
    _p("globals-computed", "globals()['o' + 's'].system(CMD)"),
    _p("string-annotation", "import typing\ndef f(x: \"__import__('os').system(CMD)\"):\n    pass\n"
       "typing.get_type_hints(f)"),
    _p("pydantic-annotation", "from pydantic import BaseModel\nclass M(BaseModel):\n"
       "    x: \"__import__('os').system(CMD) or int\"", "pydantic"),
    _p("doctest-string", "import doctest\ndoctest.run_docstring_examples('>>> __import__(\"os\").system(CMD)', "
       "{'CMD': CMD})"),
    _p("copy-reduce", "import copy\nclass X:\n    def __reduce__(self):\n"
       "        return (getattr(os, 'sys' + 'tem'), (CMD,))\ncopy.deepcopy(X())"),
    # -- loaders that call whatever their data names -----------------------------------------
    _p("pickle-loads", f"import pickle\npickle.loads({PICKLE})"),
    _p("numpy-load-pickle", f"import io\nnp.load(io.BytesIO({PICKLE}), allow_pickle=True)", "numpy"),
    _p("numpy-format-pickle", f"import io\nbuf = io.BytesIO()\nnp.lib.format.write_array_header_1_0(buf, "
       f"{{'descr': '|O', 'fortran_order': False, 'shape': (1,)}})\nbuf.write({PICKLE})\nbuf.seek(0)\n"
       "np.lib.format.read_array(buf, allow_pickle=True)", "numpy"),
    _p("yaml-unsafe-load", "import yaml\nyaml.unsafe_load('!!python/object/apply:os.system [' + repr(CMD) + ']')",
       "yaml"),
    _p("yaml-full-load-name", "import yaml\nyaml.full_load('!!python/name:os.system')(CMD)", "yaml"),
    _p("yaml-load-loader", "import yaml\nyaml.load('!!python/object/apply:os.system [' + repr(CMD) + ']', "
       "Loader=yaml.UnsafeLoader)", "yaml"),
    _p("torch-load-pickle", f"import io, torch\ntorch.load(io.BytesIO({PICKLE}), weights_only=False)", "torch"),
    _p("torch-serialization-load", f"import io, torch\ntorch.serialization.load(io.BytesIO({PICKLE}), "
       "weights_only=False)", "torch"),
    # -- what the deny-list always named (kept: the allow-list must not lose them) ------------
    _p("os-system", "os.system(CMD)"),
    _p("posix-system", "import posix\nposix.system(CMD)"),
    _p("reexport-shutil-os", "import shutil\nshutil.os.system(CMD)"),
    _p("star-import", "from os import *\nsystem(CMD)"),
    _p("dunder-import", "__import__('os').system(CMD)"),
    _p("ctypes-cdll", "import ctypes\nctypes.CDLL(None).system(CMD.encode())"),
    _p("pydoc-tempfilepager", "import pydoc\npydoc.tempfilepager('', CMD)"),
    _p("torch-cpp-extension", "from torch.utils import cpp_extension\ncpp_extension.load_inline('m', "
       "'int f() { return system(\"x\"); }', functions=['f'])", "torch", runs=False),
]
