"""The one build step pyproject.toml cannot say: the bundled examples go into the wheel.

``examples/`` stays at the repository's root, where readers look for it; a wheel (what
``pip install progenitor`` or ``pip install git+...`` builds) carries a copy of every example
in it (each directory holding a ``progenitor.yaml``, found when the wheel is built, so a new
example needs no edit here) as ``progenitor/examples/``, which ``progenitor init --example``
reads. An editable install reads ``examples/`` where it is and gets no copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", ".progenitor", ".git", "demo", "*.egg-info")
"""What a developer's run of an example may have left beside it: never shipped."""


class BuildWithExamples(build_py):
    """``build_py``, then every example copied into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "progenitor" / "examples"
        shutil.rmtree(target, ignore_errors=True)
        for example in sorted((ROOT / "examples").iterdir()):
            if (example / "progenitor.yaml").is_file():
                shutil.copytree(example, target / example.name, ignore=LEFT_OUT)


setup(cmdclass={"build_py": BuildWithExamples})
