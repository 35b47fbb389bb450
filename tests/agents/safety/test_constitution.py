"""The constitution: its format, how it is loaded, and its rules on code and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from progenitor.agents.safety import ChangedFile
from progenitor.agents.safety.allowlist import AllowList
from progenitor.agents.safety.code_check import check_python
from progenitor.agents.safety.file_check import diff_size, matches_file_rule
from progenitor.errors import UserError
from progenitor.task.constitution import (
    Constitution,
    FileRule,
    default_constitution_text,
    load_constitution,
    parse_constitution,
)

DEFAULT = parse_constitution(default_constitution_text(), "default")
BASE = AllowList(frozenset(DEFAULT.allowed_imports.modules) | {"numpy", "torch", "yaml", "timeit", "importlib"})
"""The allow-list of a base that uses numpy, torch, yaml, timeit and importlib besides the default modules."""


def findings(code: str, constitution: Constitution = DEFAULT, allow: AllowList = BASE) -> list[tuple[str, int, str]]:
    return [(f.rule, f.line, f.message) for f in check_python(code.encode(), "model.py", constitution, allow)]


def rules(code: str, constitution: Constitution = DEFAULT, allow: AllowList = BASE) -> list[str]:
    return [f[0] for f in findings(code, constitution, allow)]


# --- format -------------------------------------------------------------------------------

def test_default_template_parses_and_has_principles():
    assert DEFAULT.forbidden_imports and DEFAULT.forbidden_calls and DEFAULT.symlinks
    assert DEFAULT.principles and all(isinstance(p, str) for p in DEFAULT.principles)


def test_empty_file_is_an_empty_constitution():
    assert parse_constitution("", "c.yaml") == Constitution()


@pytest.mark.parametrize("text, expected", [
    ("forbidden_importz: []", "c.yaml: unknown field 'forbidden_importz'"),
    ("forbidden_imports: [{modules: [socket], severity: severe}]", "'forbidden_imports[0].severity'"),
    ("forbidden_imports: [{modules: ['not a module']}]", "'forbidden_imports[0].modules'"),
    ("forbidden_calls: [{severity: high}]", "'forbidden_calls[0].calls' is missing"),
    ("max_diff: {bytes: lots}", "'max_diff.bytes'"),
    ("version: 2", "'version'"),
    ("- a list", "expected a mapping"),
    ("a: [unclosed", "not valid YAML at line"),
])
def test_a_broken_constitution_is_one_sentence_naming_file_and_field(text, expected):
    with pytest.raises(UserError) as err:
        parse_constitution(text, "c.yaml")
    message = str(err.value)
    assert message.startswith("c.yaml") and expected in message and "\n" not in message


def test_load_reads_the_named_file_from_the_tree(tmp_path: Path):
    (tmp_path / "rules.yaml").write_text("forbidden_imports: [{modules: [socket]}]\nprinciples: [be good]\n")
    c = load_constitution(tmp_path, "rules.yaml")
    assert c.forbidden_imports[0].modules == ["socket"] and c.principles == ["be good"]


def test_load_without_a_name_is_the_default(tmp_path: Path):
    assert load_constitution(tmp_path, None) == DEFAULT


def test_load_missing_or_escaping_file_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="rules.yaml: the constitution named by progenitor.yaml"):
        load_constitution(tmp_path, "rules.yaml")
    with pytest.raises(UserError, match="points outside the repository"):
        load_constitution(tmp_path, "../rules.yaml")


# --- rules on code ------------------------------------------------------------------------

@pytest.mark.parametrize("code", [
    "import socket",
    "import socket as s",
    "import urllib.request",
    "from urllib import request",
    "from http.client import HTTPConnection",
    "import importlib\nimportlib.import_module('socket')",
    "from importlib import import_module as im\nim('subprocess')",
    "def f():\n    import ctypes\n",
])
def test_forbidden_imports_are_seen_through_aliases(code):
    assert "forbidden-import" in rules(code)


@pytest.mark.parametrize("code, name", [
    ("eval('1')", "eval"),
    ("e = eval", "eval"),
    ("import builtins\nbuiltins.exec('x=1')", "exec"),
    ("from builtins import eval as e", "eval"),
    ("getattr(__builtins__, 'eval')('1')", "eval"),
    ("import builtins\nvars(builtins)['exec']('1')", "exec"),
    ("__builtins__.__dict__['compile']", "compile"),
    ("globals()['__builtins__']['eval']", "eval"),
    ("import os\nos.system('ls')", "os.system"),
    ("from os import system as run\nrun('ls')", "os.system"),
    ("import os as o\no.execv('/bin/sh', [])", "os.execv"),
    ("import sys\nsys.modules['os'].popen('ls')", "os.popen"),
    ("import os\ngetattr(os, 'system')('ls')", "os.system"),
    ("from pathlib import Path\nPath('out').symlink_to('x')", "<object>.symlink_to"),
    ("import os\nos.setsid()", "os.setsid"),
    ("().__class__.__base__.__subclasses__()", "<object>.__class__.__base__.__subclasses__"),
    ("f.__globals__['__builtins__']", "f.__globals__"),
])
def test_forbidden_calls_are_seen_through_aliases(code, name):
    found = findings(code)
    assert any(rule == "forbidden-call" and repr(name) in message for rule, _, message in found), found


# Every sibling of "import posix; posix.system(...)" that code_check's docstring lists, and the rule that stops it.
LOW_LEVEL = [
    ("import posix\nposix.fork(); posix.setsid(); posix.system('x')", "forbidden-call", "'os.fork'"),
    ("import nt\nnt.system('x')", "forbidden-call", "'os.system'"),
    ("from posix import system as s\ns('x')", "forbidden-call", "'os.system'"),
    ("from posix import *", "forbidden-call", "star-imports 'os'"),
    ("import posix\nposix.posix_spawn(p, [], {})", "forbidden-call", "'os.posix_spawn'"),
    ("import posix\nposix.execv(p, [])\nposix.kill(1, 9)", "forbidden-call", "'os.execv'"),
    ("import _posixsubprocess\n_posixsubprocess.fork_exec()", "forbidden-import", "(that is 'subprocess')"),
    ("import _winapi", "forbidden-import", "(that is 'subprocess')"),
    ("import _socket", "forbidden-import", "(that is 'socket')"),
    ("from _multiprocessing import SemLock", "forbidden-import", "(that is 'multiprocessing')"),
    ("import sys\nsys.modules['posix'].system('x')", "forbidden-call", "'os.system'"),
    ("import sys\nsys.modules.get('os').system('x')", "forbidden-call", "'os.system'"),
    ("import builtins\nbuiltins.__import__('os')", "forbidden-call", "'__import__'"),
    ("__builtins__['__import__']('os')", "forbidden-call", "'__import__'"),
    ("m = __builtins__.__import__('importlib').import_module(n)", "dynamic-import", "computed at run time"),
    ("import os\ngetattr(os, 'sys' + 'tem')('x')", "dynamic-import", "attribute of 'os'"),
    ("import sys\nsys.modules[n]", "dynamic-import", "attribute of 'sys.modules'"),
    ("globals()[n]('x')", "dynamic-import", "attribute of 'globals()'"),
    ("import builtins\nvars(builtins).get(n)", "dynamic-import", "attribute of 'builtins'"),
    ("import operator, os\noperator.attrgetter('system')(os)('x')", "forbidden-call", "'os.system'"),
    ("import operator, os\noperator.methodcaller('system', 'x')(os)", "forbidden-call", "'os.system'"),
    ("import os\nos.__getattribute__('system')('x')", "forbidden-call", "'os.system'"),
    ("import os\nobject.__getattribute__(os, 'system')('x')", "forbidden-call", "'os.system'"),
    ("import shutil\nshutil.os.system('x')", "forbidden-call", "'shutil.os.system'"),
    ("from shutil import os\nos.system('x')", "forbidden-call", "'shutil.os.system'"),
    ("import asyncio\nasyncio.subprocess.PIPE", "forbidden-import", "uses 'asyncio.subprocess'"),
    ("from asyncio import subprocess", "forbidden-import", "'asyncio.subprocess'"),
    ("import torch.multiprocessing as mp", "forbidden-import", "'torch.multiprocessing'"),
    ("import asyncio\nasyncio.create_subprocess_shell('x')", "forbidden-call", "create_subprocess_shell"),
    ("loop.subprocess_exec(p)", "forbidden-call", "subprocess_exec"),
    ("from concurrent.futures import ProcessPoolExecutor", "forbidden-call", "ProcessPoolExecutor"),
    ("import os\nos.unshare(0)", "forbidden-call", "'os.unshare'"),
    ("import signal\nsignal.pthread_kill(1, 9)", "forbidden-call", "'signal.pthread_kill'"),
    ("import signal\nsignal.pidfd_send_signal(3, 9)", "forbidden-call", "'signal.pidfd_send_signal'"),
    ("import asyncio\nasyncio.open_connection('h', 1)", "forbidden-call", "'asyncio.open_connection'"),
    ("import webbrowser", "forbidden-import", "'webbrowser'"),
    ("import importlib.util\ns = importlib.util.spec_from_file_location('m', 'x.py')", "forbidden-call",
     "spec_from_file_location"),
    ("spec.loader.exec_module(m)", "forbidden-call", "exec_module"),
    ("import importlib\nimportlib.reload(m)", "forbidden-call", "'importlib.reload'"),
    ("import _imp", "forbidden-import", "'_imp'"),
    ("import timeit\ntimeit.timeit('1')", "forbidden-call", "'timeit.timeit'"),
    ("import gc\ngc.get_objects()", "forbidden-call", "'gc.get_objects'"),
    ("import sys\nsys._getframe()", "forbidden-call", "'sys._getframe'"),
    ("import io\nio.open('/etc/passwd')", "absolute-path", "'/etc/passwd'"),
    ("import os\nos.open(b'/etc/passwd', 0)", "absolute-path", "'/etc/passwd'"),
    ("open('../../x')", "absolute-path", "climbs out"),
    ("import os\nopen(os.sep + 'etc' + os.sep + 'passwd')", "absolute-path", "filesystem's root"),
    ("open('/' + name)", "absolute-path", "filesystem's root"),
    ("open(f'/{name}')", "absolute-path", "filesystem's root"),
    ("open('/{}'.format(name))", "absolute-path", "filesystem's root"),
    ("open('/%s' % name)", "absolute-path", "filesystem's root"),
    ("import os\nos.path.join('/', 'etc')", "absolute-path", "filesystem's root"),
    ("from pathlib import Path\nPath('/') / 'etc'", "absolute-path", "filesystem's root"),
    ("import os\nos.path.expanduser('~')", "absolute-path", "filesystem's root"),
    ("from pathlib import Path\nPath.home()", "absolute-path", "home directory"),
]


@pytest.mark.parametrize("code, rule, says", LOW_LEVEL, ids=[c.splitlines()[-1][:40] for c, _, _ in LOW_LEVEL])
def test_low_level_spellings_of_what_a_rule_forbids_are_seen(code, rule, says):
    found = findings(code)
    assert any(r == rule and says in message for r, _, message in found), found


@pytest.mark.parametrize("code", [
    "import torch\nmodel.eval()",
    "import os\nos.environ[key]\nos.environ.get(key)\nos.path.join(a, 'b')",
    "x.split('/')\n'/'.join(parts)\nprint('/', 1)\nname.rstrip('/')",
    "import sys\nsys.modules[__name__]",
    "import numpy as np\narr = np.zeros(3)\narr.ctypes.data",
    "import threading\nthreading.Thread(target=f).start()",
    "d.get('exec')\nconfig.get('system')",
    "f'{a}/{b}'\na + '/' + b",
    "import types, timeit, importlib.util\nisinstance(f, types.FunctionType)\nt = timeit.default_timer()\n"
    "importlib.util.find_spec('torch')",
])
def test_honest_code_that_looks_low_level_is_not_flagged(code):
    assert findings(code) == []


def test_star_import_from_a_module_with_forbidden_calls():
    assert rules("from os import *") == ["forbidden-call"]


def test_honest_training_code_has_no_findings():
    code = '''"""Train a small net; see /docs/train.md (a docstring may name any path)."""
import argparse, json, os, re
from pathlib import Path
import numpy as np

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data"); p.add_argument("--out")
    a = p.parse_args()
    x = np.load(os.path.join(a.data, "train_x.npy"))
    model = object()
    pattern = re.compile(r"\\d+")
    Path(a.out, "predictions.npy").write_bytes(b"")
    print("/", json.dumps({"accuracy": 1.0}))
    with open(os.devnull if False else "/dev/null", "w"):
        pass
'''
    assert findings(code) == []


def test_method_names_that_shadow_builtins_are_not_flagged():
    assert rules("model.eval()\nmodel.compile()\nimport re\nre.compile('x')\nimport torch\ntorch.compile") == []


def test_absolute_paths_in_code_are_flagged_with_their_line():
    found = findings("x = 1\nopen('/etc/passwd')\nf'/root/{x}'\nopen('~/.ssh/id_rsa')\n")
    assert [(r, line) for r, line, _ in found] == [("absolute-path", 2), ("absolute-path", 3), ("absolute-path", 4)]


def test_dynamic_import_of_a_computed_name():
    assert rules("import importlib\nname = 'so' + 'cket'\nimportlib.import_module(name)") == ["dynamic-import"]
    assert "dynamic-import" in rules("__import__(x)", parse_constitution("dynamic_imports: {severity: low}", "c"))
    assert rules("__import__(x)", Constitution(allowed_imports=None, name_access=None)) == []


def test_coding_cookie_is_decoded_like_the_interpreter_does():
    # "import socket" hidden in UTF-7: a text scanner sees no 'import', Python runs it.
    source = b"# coding: utf-7\n+AGkAbQBwAG8AcgB0ACA-socket\n"
    assert "forbidden-import" in [f.rule for f in check_python(source, "m.py", DEFAULT)]


def test_unparsable_python_is_high():
    found = check_python(b"def (:\n", "m.py", DEFAULT)
    assert [(f.rule, f.severity, f.line) for f in found] == [("unparsable", "high", 1)]


def test_rule_severity_and_reason_come_from_the_constitution():
    c = parse_constitution("forbidden_imports: [{modules: [json], severity: low, reason: keep it simple}]", "c")
    [f] = check_python(b"import json.decoder", "m.py", c)
    assert f.severity == "low" and f.message.endswith(": keep it simple") and f.line == 1


# --- rules on files -----------------------------------------------------------------------

@pytest.mark.parametrize("path, pattern", [
    ("lib/fast.so", "*.so"), ("x.so.1", "*.so.*"), (".gitattributes", ".git*"),
    ("sub/.git/config", ".git*"), ("pkg/__pycache__/m.cpython-311.pyc", "*.pyc"),
    ("m.pyc", "*.pyc"), ("sitecustomize.py", "sitecustomize.py"),
])
def test_forbidden_file_patterns_match_any_component(path, pattern):
    hit = next(filter(None, (matches_file_rule(path, r) for r in DEFAULT.forbidden_files)), None)
    assert hit == pattern


def test_a_pattern_with_a_slash_matches_the_whole_path():
    rule = FileRule(patterns=["data/*.csv"])
    assert matches_file_rule("data/x.csv", rule) and not matches_file_rule("other/data/x.csv", rule)
    assert not matches_file_rule("model.py", rule)


def test_diff_size_counts_lines_files_and_new_bytes(tmp_path: Path):
    base, cand = tmp_path / "base", tmp_path / "cand"
    base.mkdir(), cand.mkdir()
    (base / "a.py").write_text("1\n2\n3\n")
    (cand / "a.py").write_text("1\nTWO\n3\n4\n")
    (base / "gone.py").write_text("x\ny\n")
    (cand / "blob.bin").write_bytes(b"\0" * 100)
    changed = [ChangedFile(path="a.py", status="M"), ChangedFile(path="gone.py", status="D"),
               ChangedFile(path="blob.bin", status="A")]
    lines, files, size = diff_size(base, cand, changed)
    assert (lines, files) == (3 + 2, 3)  # 2->TWO is one removed and one added, +4, and two removed
    assert size == len("1\nTWO\n3\n4\n") + 100
