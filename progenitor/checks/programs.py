"""Which programs (and scripts) a task's shell command runs, and whether they exist.

Only what can be known without running it: the first word of each simple command (after
``VAR=value`` assignments and wrappers like ``exec`` or ``env``), looked up on the PATH the
command will have, or in the tree when it names a path; and the script an interpreter is
given (``python train.py``), looked up in the tree. Shell keywords and builtins are skipped.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import shutil
from pathlib import Path
from typing import Optional

from progenitor.task.placeholders import fill

__all__ = ["command_problems", "programs_of"]

_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "|&", ";;", "\n"}
_SKIP = {"cd", "export", "set", "unset", "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
         "case", "esac", "in", "!", "{", "}", "[", "[[", "test", "echo", "printf", "true", "false", ":", ".",
         "source", "eval", "ulimit", "umask", "read", "wait", "trap", "shift", "return", "exit", "local"}
_WRAPPERS = {"exec", "env", "command", "nohup", "time"}
_INTERPRETER = re.compile(r"^(python(\d+(\.\d+)?)?|bash|sh|dash|zsh|Rscript|julia|node|perl|ruby)$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_MARK = "\0placeholder\0"


def _words(command: str) -> list[list[str]]:
    """The simple commands of ``command``, each as its words (placeholders marked)."""
    text = fill(command, {**{name: _MARK + name for name in ("data", "out", "tree", "outputs", "scores")}, "seed": "0"})
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token in _SEPARATORS:
                segments.append([])
            else:
                segments[-1].append(token)
    except ValueError:  # unbalanced quotes: the shell will say so when it runs
        return []
    return [s for s in segments if s]


def programs_of(command: str) -> list[tuple[str, Optional[str]]]:
    """(program, script or None) for each simple command; a script's path is relative to the
    tree's root (a ``cd DIR`` before it is followed)."""
    found = []
    cwd = ""
    for words in _words(command):
        while words and (_ASSIGNMENT.match(words[0]) or words[0] in _WRAPPERS):
            words = words[1:]
        if len(words) == 2 and words[0] == "cd" and _MARK not in words[1] and not words[1].startswith("/"):
            cwd = posixpath.normpath(posixpath.join(cwd, words[1]))
            continue
        if not words or words[0] in _SKIP or _MARK in words[0]:
            continue
        program = words[0]
        script = _script(words[1:]) if _INTERPRETER.match(program.rsplit("/", 1)[-1]) else None
        if script is not None and not script.startswith("/"):
            script = posixpath.normpath(posixpath.join(cwd, script))
        found.append((program, script))
    return found


def _script(args: list[str]) -> Optional[str]:
    """The script an interpreter's arguments name: the first that is not an option, unless
    ``-m`` or ``-c`` (a module or inline code) comes first."""
    for arg in args:
        if arg in ("-m", "-c") or _MARK in arg:
            return None
        if not arg.startswith("-"):
            return arg
    return None


def command_problems(command: str, files: list[str], path: str, where: str) -> tuple[list[str], list[str]]:
    """(what was found, what is missing) for ``command``: programs looked up on ``path`` (or in
    ``files``, the tree, when they name a relative path), scripts in ``files``."""
    found, missing = [], []
    tree = set(files)
    for program, script in programs_of(command):
        if "/" in program:
            ok = posixpath.normpath(program) in tree or (program.startswith("/") and shutil.which(program) is not None)
            (found if ok else missing).append(program if ok else f"program {program} (not in {where})")
        else:
            located = shutil.which(program, path=path)
            (found if located else missing).append(program if located else f"program {program!r} (not on its PATH)")
        if script is not None:
            ok = script in tree or (script.startswith("/") and Path(script).is_file())
            (found if ok else missing).append(script if ok else f"script {script} (not in {where})")
    return found, missing
