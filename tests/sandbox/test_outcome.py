"""``sandbox.outcome.judge`` turns whatever a command ended with into a status and a sentence:
the exit code is the candidate's choice, so no code may raise out of it."""

from __future__ import annotations

import pytest

from progenitor.sandbox.base import Limits
from progenitor.sandbox.outcome import Outcome, judge


@pytest.mark.parametrize("returncode", [*range(0, 256), *range(-1, -70, -1)])
def test_every_exit_code_and_signal_is_judged(returncode):
    result = judge(Outcome(ended_by="exit", returncode=returncode, duration=0.1, cpu_seconds=0.0, stdout="",
                           stderr="last words\n", truncated=False), Limits())
    assert result.status == ("ok" if returncode == 0 else "failed")
    code = returncode if returncode >= 0 else 128 - returncode
    if returncode == 0:
        assert result.reason == ""
    elif 128 < code < 193:
        assert result.reason.startswith(("killed by SIG", "killed by signal ")) and f"(exit code {code})" in result.reason
    else:
        assert result.reason == f"exit code {code}: last words"
