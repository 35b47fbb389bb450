"""Test doubles that ship with progenitor: a tiny numpy-only task that trains in a blink,
real git repos made from a dict of files, a fake executor that plays training in-process,
a toy next-token task scored by running its model (``toy_lm``), a scripted architect that proposes given file edits (attacks included) as candidates, and a
scripted OpenAI-compatible server on 127.0.0.1 that plays the language model to litellm."""

from progenitor.testing.executor import FakeExecutor, FakeRun, toy_training
from progenitor.testing.llm_server import Reply, ScriptedLLMServer
from progenitor.testing.repos import curve_train, make_repo, toy_task_files
from progenitor.testing.scripted import ScriptedArchitect, scripted
from progenitor.testing.toy_lm import toy_lm_files

__all__ = ["FakeExecutor", "FakeRun", "Reply", "ScriptedArchitect", "ScriptedLLMServer", "curve_train", "make_repo",
           "scripted", "toy_lm_files", "toy_task_files", "toy_training"]
