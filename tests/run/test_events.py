"""The run's events: one model per kind, written with their version, read back typed; files
of version 1 (untyped, no ``v``) read too; nothing a line holds can make reading fail."""

from __future__ import annotations

import json
import typing

import pytest

from progenitor.run import events
from progenitor.run.rundir import RunDir


def kinds() -> list[type[events.Event]]:
    return list(typing.get_args(typing.get_args(events.AnyEvent)[0]))


def minimal(cls: type[events.Event]) -> events.Event:
    """An instance with every required field filled with a value of its type."""
    values = {"str": "x", "int": 1, "float": 1.5, "bool": True}
    data = {}
    for name, field in cls.model_fields.items():
        if field.is_required():
            annotation = field.annotation
            kind = getattr(annotation, "__name__", str(annotation))
            data[name] = {"dict": {"m": 1.0}, "list": []}.get(getattr(typing.get_origin(annotation), "__name__", ""),
                                                                values.get(kind, "x"))
    return cls(**data)


@pytest.fixture
def run(tmp_path) -> RunDir:
    run = RunDir(tmp_path, "r20260101-ev01")
    run.create({"repo": str(tmp_path)})
    return run


def test_every_kind_round_trips_through_the_log_typed(run):
    written = [run.emit(minimal(cls)) for cls in kinds()]
    read = run.events()
    assert [type(e) for e in read] == [type(e) for e in written] and len(read) == len(kinds()) >= 40
    assert all(e.run == run.run_id and e.v == events.EVENTS_VERSION for e in read)
    assert read == written
    assert len({cls.model_fields["type"].default for cls in kinds()}) == len(kinds()), "one kind, one model"


def test_emit_takes_a_model_and_a_model_refuses_an_unknown_field(run):
    with pytest.raises(TypeError, match="event model"):
        run.emit("coder.commit")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        events.CoderCommit(gen=1, k=0, commit="a", ref="r", hypothesis="not a field of coder.commit")


def test_a_version_1_file_reads_and_a_line_this_version_cannot_read_is_kept_as_it_was(run):
    old = [
        {"t": 1.0, "run": run.run_id, "type": "run.resume"},
        {"t": 2.0, "run": run.run_id, "type": "score", "gen": 1, "k": 0, "status": "scored", "value": 0.5, "reason": ""},
        # version 1 wrote a decision's own type over the event's kind
        {"t": 3.0, "run": run.run_id, "type": "approve", "gate": "g1/promotion", "gen": 1, "by": "human:x"},
        {"t": 4.0, "run": run.run_id, "type": "from.the.future", "depth": {"a": [1, 2]}},
    ]
    run.events_file.write_text("".join(json.dumps(e) + "\n" for e in old))
    resume, score, legacy, future = run.events()
    assert isinstance(resume, events.RunResume) and isinstance(score, events.Score) and score.value == 0.5
    assert isinstance(legacy, events.UnknownEvent) and legacy.type == "approve" and legacy.gate == "g1/promotion"
    assert isinstance(future, events.UnknownEvent) and future.depth == {"a": [1, 2]}


def test_follow_yields_typed_events_as_they_are_appended(run):
    run.emit(events.PrepareData())
    run.emit(events.BaselineStart(commit="abc"))
    seen = list(run.follow(lambda: True, poll=0.01))
    assert [type(e) for e in seen] == [events.PrepareData, events.BaselineStart]


@pytest.mark.parametrize("odd", ["\u2028", "\u2029", "\x85", "\x1c", "\x0c", "\r"])
def test_a_printed_line_with_a_line_separator_of_unicode_reads_back_whole(tmp_path, odd):
    """A candidate's printed line is an event: a character ``str.splitlines`` breaks at (but JSON
    leaves raw) cut the stored line in two, and ``status``, the API and the page failed for good."""
    from progenitor.run.events import TrainLine
    from progenitor.run.rundir import RunDir

    run = RunDir(tmp_path / "repo", "r20260101-0001")
    run.path.mkdir(parents=True)
    said = f'epoch 1{odd}{{"x'
    run.emit(TrainLine(gen=1, k=0, stream="stdout", line=said))
    run.emit(TrainLine(gen=1, k=0, stream="stdout", line="after"))
    assert [e.line for e in run.events()] == [said, "after"]
    assert [e.line for e in run.follow(lambda: True)] == [said, "after"]
