"""The boundary around a job's outputs and quota, on every backend: a sparse file counts its
apparent size, paths beyond the bounds (deep, long, control characters) never come back, the
driver's unpacking fails one candidate instead of the run, and a failing watcher says so."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from progenitor.compute.base import TrainJob, execute_job
from progenitor.compute.outputs import unpack_outputs
from progenitor.errors import CandidateDataError
from progenitor.sandbox.base import Limits
from tests.sandbox.test_outputs import TREE, job  # noqa: F401 - the fixture, every backend


def python(code: str) -> str:
    import shlex

    return f"python3 -c {shlex.quote(code)}"


def test_sparse_files_count_their_apparent_size(job):
    """Two 40 MiB files that hold nothing on disk are 80 MiB once copied to the host: over 64 MiB."""
    result = job("truncate -s 40M {out}/a && truncate -s 40M {out}/b && sleep 3 && echo never")
    box = result.sandbox
    assert box.status == "disk", box
    assert "64 MiB quota" in box.reason and "never" not in box.stdout


DEEP_AND_ODD = """
import os, sys
OUT = sys.argv[1]
os.chdir(OUT)
with open("predictions.npy", "wb") as f:
    f.write(b"kept")
with open("evil\\x1b]52;c;cHduZWQ=\\x07.txt", "w") as f:
    f.write("x")
os.mkdir("deep")
os.chdir("deep")
for _ in range(1500):  # deeper than any recursion limit
    os.mkdir("d")
    os.chdir("d")
os.chdir(OUT)
os.mkdir("long")
os.chdir("long")
for _ in range(25):  # 5,000 bytes: longer than the host's PATH_MAX
    os.mkdir("n" * 200)
    os.chdir("n" * 200)
open("f", "w").close()
print("left them")
"""


def test_deep_long_and_control_character_paths_never_come_back(job, tmp_path):
    result = job(python(DEEP_AND_ODD) + " {out}", outputs_first=["predictions.npy"])
    # A quota cannot hold what it cannot follow: the job ends as over its quota, and its outputs
    # come back without what is beyond the bounds.
    assert result.sandbox.status == "disk", result.sandbox
    assert "levels deep" in result.sandbox.reason or "bytes (at most 1024)" in result.sandbox.reason
    assert "paths refused" in result.sandbox.reason, result.sandbox.reason
    dest = tmp_path / "back"
    unpack_outputs(result.outputs_archive, dest)
    names = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if len(p.relative_to(dest).parts) < 70}
    assert "predictions.npy" in names
    assert not [n for n in names if "\x1b" in n]
    assert max(len(p.relative_to(dest).parts) for p in dest.rglob("*")) <= 64


def _archive(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_unpacking_skips_what_the_host_cannot_hold_and_fails_the_candidate_on_the_rest(tmp_path):
    long = "/".join(["n" * 200] * 25) + "/f"
    written = unpack_outputs(_archive([(long, b"x"), ("a\x1bb", b"x"), ("ok.npy", b"x")]), tmp_path / "one")
    assert written == 1 and (tmp_path / "one" / "ok.npy").exists()
    with pytest.raises(CandidateDataError, match="could not be unpacked"):
        unpack_outputs(_archive([("f", b"x"), ("f/g", b"y")]), tmp_path / "two")  # a file where a directory must be
    with pytest.raises(CandidateDataError):
        unpack_outputs(b"not a tar archive at all" * 40, tmp_path / "three")


NAMES = st.lists(st.tuples(st.text(min_size=1, max_size=40), st.binary(max_size=8)), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(NAMES)
def test_any_archive_unpacks_inside_its_directory_or_fails_the_candidate(tmp_path, members):
    dest = tmp_path / "fuzz" / "dest"
    from progenitor.boundary.walk import remove_tree

    remove_tree(tmp_path / "fuzz")
    try:
        unpack_outputs(_archive([(n.replace("\0", ""), d) for n, d in members]), dest)
    except CandidateDataError:
        pass
    except (UnicodeEncodeError, ValueError):  # a name tarfile itself will not write into the archive
        return
    assert [p.name for p in (tmp_path / "fuzz").iterdir()] == ["dest"]
    for path in dest.rglob("*"):
        assert not path.is_symlink() and (path.is_dir() or path.is_file())


@pytest.mark.loop
def test_a_watcher_that_fails_stops_watching_and_says_so_while_the_job_goes_on(tmp_path):
    def broken(out: Path):
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    result = execute_job(TrainJob(key="t/g1/c1", command="sleep 2; echo done", tree_archive=TREE,
                                  limits=Limits(wall_time=30), backend="process"), None, watch=broken)
    assert result.sandbox.status == "ok" and "done" in result.sandbox.stdout
    assert result.watch_failed.startswith("early stopping stopped watching it: RecursionError")


def test_progress_lines_a_watcher_cannot_take_are_skipped_and_a_flood_ends_the_watching(tmp_path):
    from progenitor.compute.pruning import MAX_POINTS, PruneConfig

    watcher = PruneConfig(metric="e", goal="minimize", champion={1: 1.0, 2: 0.5}).watcher("progress.jsonl")
    (tmp_path / "progress.jsonl").write_text("[" * 100_000 + "\n" + '{"step": 1, "e": 2.0}\n')
    assert watcher(tmp_path) is None and watcher.points == {1: 2.0}
    with open(tmp_path / "progress.jsonl", "a") as f:
        f.writelines(f'{{"step": {i}, "e": 1.0}}\n' for i in range(2, MAX_POINTS + 10))
    with pytest.raises(CandidateDataError, match="more than"):
        while watcher(tmp_path) is None:
            pass
