"""Walks and removals of trees a candidate shaped: iterative, link-free, bounded."""

from __future__ import annotations

import os
import stat
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from progenitor.boundary.walk import TREE, Bounds, refusal, remove_tree, walk
from progenitor.errors import CandidateDataError


def deep(root, levels: int, name: str = "d") -> None:
    """``levels`` nested directories under ``root`` (made relative to each other: no long path)."""
    fd = os.open(root, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    with open(os.open("leaf.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
        f.write("x = 1\n")
    os.close(fd)


def test_a_tree_deeper_than_the_recursion_limit_is_walked_and_removed(tmp_path):
    (tmp_path / "t").mkdir()
    deep(tmp_path / "t", sys.getrecursionlimit() + 200)
    with pytest.raises(CandidateDataError, match="levels deep"):
        list(walk(tmp_path / "t"))
    refused: list[str] = []
    seen = list(walk(tmp_path / "t", refused=refused))
    assert len(seen) == TREE.depth and refused and "levels deep" in refused[0]
    remove_tree(tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_a_path_longer_than_the_host_allows_is_refused_and_removed(tmp_path):
    (tmp_path / "t").mkdir()
    deep(tmp_path / "t", 40, "n" * 200)  # 8,000 bytes: ENAMETOOLONG for anything that opens it by name
    refused: list[str] = []
    assert [e.rel.count("/") for e in walk(tmp_path / "t", refused=refused)] == [0, 1, 2, 3, 4]
    assert "bytes (at most 1024)" in refused[0]
    remove_tree(tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_removal_takes_modes_and_links_as_a_candidate_left_them(tmp_path):
    top = tmp_path / "job"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    os.symlink(outside, top / "a" / "link")
    os.chmod(top / "a" / "b", 0)
    os.chmod(top / "a", 0o500)
    remove_tree(top)
    assert not top.exists() and (outside / "keep").read_text() == "keep"


def test_links_are_yielded_as_links_and_never_entered(tmp_path):
    (tmp_path / "t" / "d").mkdir(parents=True)
    (tmp_path / "t" / "d" / "f").write_text("x")
    os.symlink(tmp_path, tmp_path / "t" / "up")
    entries = {e.rel: e for e in walk(tmp_path / "t")}
    assert set(entries) == {"d", "d/f", "up"}
    assert stat.S_ISLNK(entries["up"].st.st_mode) and entries["d"].is_dir


def test_entries_past_the_count_are_refused(tmp_path):
    for i in range(30):
        (tmp_path / f"f{i}").touch()
    with pytest.raises(CandidateDataError, match="more than 10 entries"):
        list(walk(tmp_path, Bounds(entries=10)))


def test_control_characters_are_refused_only_where_the_bounds_say():
    assert refusal("a/b\x1b[2J.txt") is None
    assert "control characters" in refusal("a/b\x1b[2J.txt", Bounds(control=False))
    assert "name of 300 bytes" in refusal("x" * 300)


NAMES = st.text(alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1,
                max_size=30).filter(lambda n: n not in (".", ".."))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(NAMES, min_size=1, max_size=6), max_size=12))
def test_any_tree_is_walked_exactly_and_removed_whole(tmp_path, paths):
    top = tmp_path / "fuzz"
    remove_tree(top)
    top.mkdir()
    made = set()
    for parts in paths:
        here = top
        try:
            for i, part in enumerate(parts):
                here = here / part
                if i < len(parts) - 1:
                    here.mkdir(exist_ok=True)
                elif not here.exists():
                    here.write_bytes(b"x")
        except OSError:  # a name the filesystem will not take, or a file where a directory was asked
            continue
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            made.add(os.path.relpath(os.path.join(root, name), top).replace(os.sep, "/"))
    refused: list[str] = []
    walked = {e.rel for e in walk(top, refused=refused)}
    assert walked == {m for m in made if refusal(m) is None and all(refusal(p) is None for p in _prefixes(m))}
    remove_tree(top)
    assert not top.exists()


def _prefixes(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
