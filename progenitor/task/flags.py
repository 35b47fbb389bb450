"""``search_space.flags``: the knobs reach the training as ``--name=value`` on its command line.

Many model repositories are configured by ``argparse`` or by Python config files that read
overrides from the command line (``python train.py --n_layer=4``), not by a YAML file. With
``flags: true`` such a repository needs no rewrite, only a small file of the values:

- the values live in ``search_space.file`` (YAML, JSON or TOML, committed), as always: the
  offline coder writes a candidate's values there, with its comments kept, and the search reads
  the baseline's values from it;
- at training, progenitor reads that file *from the commit being trained* and appends one
  ``--name=value`` per declared knob to the end of ``train.command`` (in the order of
  ``params``), so the command should end with the training program's own arguments.

So a commit alone reproduces its candidate: the command is ``train.command`` followed by the
flags of the file in that commit, and the command that ran is kept in the candidate's training
record. Values are checked against their knobs before they are written on a command line (a
file a candidate changed to a value outside the space fails that candidate), and each flag is
one shell-quoted word. A value is written as Python writes it (``0.001``, ``4``, ``True``,
``gelu``), which ``argparse``'s ``type=float`` and ``ast.literal_eval`` both read.
"""

from __future__ import annotations

import re
import shlex
from typing import Callable, Optional

from progenitor.errors import UserError
from progenitor.task.config_files import get_dotted, parse_config
from progenitor.task.spec import TaskSpec

__all__ = ["MAX_FILE_BYTES", "flag_words", "train_command"]

MAX_FILE_BYTES = 1 << 20
"""A values file larger than this is refused (a candidate controls it)."""
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def flag_words(spec: TaskSpec, text: str) -> list[str]:
    """The ``--name=value`` words of the values file ``text``; a missing key or a value outside
    its knob is a ``UserError`` naming it."""
    from progenitor.task.search_space import check_value

    space = spec.search_space
    assert space is not None
    data = parse_config(text, space.file)
    words = []
    for name, param in space.params.items():
        value = get_dotted(data, name)
        if value is None:
            raise UserError(f"{space.file} has no value for search_space.params key '{name}', which "
                            f"search_space.flags passes to train.command as --{name}=...")
        value, problem = check_value(name, param, value)
        if problem:
            raise UserError(f"{space.file}: {problem}, so it is not passed to train.command")
        words.append(f"--{name}={value}")
    return words


def train_command(spec: TaskSpec, read: Callable[[str], Optional[str]]) -> tuple[str, Optional[str]]:
    """(the command that trains a commit, or why it cannot be trained): ``train.command``, with
    ``search_space.flags`` the values of ``read(search_space.file)`` appended as flags.

    ``read`` returns a file's text in the commit (None: no such file)."""
    space = spec.search_space
    command = spec.train.command
    if space is None or not space.flags:
        return command, None
    text = read(space.file)
    if text is None:
        return command, f"search_space.file '{space.file}' is not in its commit, so train.command gets no flags"
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        return command, f"search_space.file '{space.file}' is larger than {MAX_FILE_BYTES >> 20} MiB"
    try:
        words = flag_words(spec, text)
    except UserError as exc:
        return command, str(exc)
    # Each flag is one shell word; a brace in a value is the value's, never a placeholder.
    quoted = [_PLACEHOLDER.sub(r"{{\1}}", shlex.quote(word)) for word in words]
    return " ".join([command, *quoted]), None
