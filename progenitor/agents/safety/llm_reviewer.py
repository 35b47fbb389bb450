"""The LLM reviewer: a constitutional review of a candidate's diff, by a language model.

The constitution's ``principles`` go in with the diff and the hypothesis; findings with
severities come out, recorded like every other finding (rule ``llm-principle-<n>``, or
``llm-review`` for one no principle covers). It only adds: the node puts its findings beside
the static review's, which nothing a model says can remove or lower, so a diff that tells
the reviewer it is "pre-approved" is judged by the static rules exactly as without that
text. A constitution without principles gives it nothing to judge by: it makes no call.
"""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from progenitor.agents import prompts
from progenitor.agents.base import AgentContext, ReviewInput
from progenitor.candidate.findings import Finding
from progenitor.candidate.keys import candidate_name
from progenitor.llm.replies import ReplyError, parse_json
from progenitor.task.constitution import load_constitution
from progenitor.task.spec import Severity

__all__ = ["DIFF_CHARS", "LlmReviewer"]

DIFF_CHARS = 60_000
"""Most of a diff shown to the model (the static review reads all of it; max_diff caps the size)."""


class ModelFinding(BaseModel):
    model_config = ConfigDict(extra="ignore")

    principle: Optional[int] = None
    severity: Severity
    message: str = Field(min_length=1)
    file: Optional[str] = None
    line: Optional[int] = None


class Review(BaseModel):
    model_config = ConfigDict(extra="ignore")

    findings: list[ModelFinding] = []


def _findings(review: Review, principles: list[str]) -> list[Finding]:
    out = []
    for i, f in enumerate(review.findings):
        if f.principle is not None and not 1 <= f.principle <= len(principles):
            raise ReplyError(f"findings.{i}.principle: {f.principle} is not a principle's number (1..{len(principles)})")
        rule = f"llm-principle-{f.principle}" if f.principle else "llm-review"
        out.append(Finding(rule=rule, severity=f.severity, message=f.message.strip(), file=f.file,
                           line=f.line if f.line and f.line > 0 else None))
    return out


class LlmReviewer:
    name = "llm"

    def __init__(self, ctx: AgentContext):
        self.llm = ctx.require_llm("llm reviewer")

    def review(self, change: ReviewInput) -> list[Finding]:
        constitution = change.constitution or load_constitution(change.base_tree, change.spec.safety.constitution)
        principles = list(constitution.principles)
        if not principles:
            return []
        cut = len(change.diff) > DIFF_CHARS
        conversation = prompts.messages(
            "reviewer", "user", principles=principles, key=candidate_name(change.gen, change.k),
            hypothesis=change.hypothesis or "(none given)", diff=change.diff[:DIFF_CHARS], cut=cut, limit=DIFF_CHARS)
        return self.llm.ask("reviewer", change.gen, change.k, conversation,
                            lambda text: _findings(parse_json(text, Review), principles), schema=Review,
                            repair=lambda error: prompts.render("reviewer", "repair", error=error))
