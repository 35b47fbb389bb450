"""tree_files: host-side reads and writes inside a tree follow no link, leave no tree, touch no .git."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from progenitor.boundary import tree_files
from progenitor.errors import CandidateError, UnsafePathError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "config.yaml").write_text("w: 1\n")
    (root / "sub" / "model.py").write_text("x = 1\n")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "progenitor.yaml").write_text("the user's own file\n")
    return target


def test_plain_reads_and_writes_stay_in_the_tree(tree):
    tree_files.write_text(tree, "config.yaml", "w: 2\n")
    tree_files.write_text(tree, "new/deep/file.py", "y = 2\n")
    assert (tree / "config.yaml").read_text() == "w: 2\n"
    assert tree_files.read_text(tree, "new/deep/file.py") == "y = 2\n"
    assert tree_files.read_text(tree, "./sub//model.py") == "x = 1\n"
    assert [tree_files.kind(tree, p) for p in ("config.yaml", "sub", "nothing", "sub/nothing")] == \
        ["file", "dir", None, None]
    tree_files.remove(tree, "sub/model.py")
    tree_files.remove(tree, "sub/model.py")  # already gone: nothing to do
    assert not (tree / "sub" / "model.py").exists()
    assert not [p for p in tree.rglob(".progenitor-write-*")], "no temporary file is left"


@pytest.mark.parametrize("link", ["absolute", "relative", "inside"])
def test_a_linked_file_is_never_followed(tree, outside, link):
    target = {"absolute": str(outside / "progenitor.yaml"), "relative": "../outside/progenitor.yaml",
              "inside": "sub/model.py"}[link]
    (tree / "config.yaml").unlink()
    os.symlink(target, tree / "config.yaml")
    for act in (lambda: tree_files.write_text(tree, "config.yaml", "pwned\n"),
                lambda: tree_files.read_text(tree, "config.yaml"),
                lambda: tree_files.remove(tree, "config.yaml")):
        with pytest.raises(UnsafePathError, match="symbolic link"):
            act()
    assert tree_files.kind(tree, "config.yaml") == "link"
    assert (outside / "progenitor.yaml").read_text() == "the user's own file\n"
    assert (tree / "sub" / "model.py").read_text() == "x = 1\n"
    assert (tree / "config.yaml").is_symlink(), "the link itself is not removed either"


def test_a_linked_parent_directory_is_never_followed(tree, outside):
    os.symlink(outside, tree / "conf")
    with pytest.raises(UnsafePathError, match="'conf'"):
        tree_files.write_text(tree, "conf/progenitor.yaml", "pwned\n")
    with pytest.raises(UnsafePathError):
        tree_files.write_text(tree, "conf/new/file.txt", "pwned\n")  # nor made under it
    with pytest.raises(UnsafePathError):
        tree_files.read_bytes(tree, "conf/progenitor.yaml")
    assert tree_files.kind(tree, "conf/progenitor.yaml") == "link"
    assert sorted(p.name for p in outside.iterdir()) == ["progenitor.yaml"]
    assert (outside / "progenitor.yaml").read_text() == "the user's own file\n"


def test_a_hard_link_to_a_file_outside_keeps_the_outside_content(tree, outside):
    (tree / "config.yaml").unlink()
    os.link(outside / "progenitor.yaml", tree / "config.yaml")
    tree_files.write_text(tree, "config.yaml", "w: 3\n")
    assert (tree / "config.yaml").read_text() == "w: 3\n"
    assert (outside / "progenitor.yaml").read_text() == "the user's own file\n"


def test_the_old_file_s_permission_bits_are_kept(tree):
    os.chmod(tree / "config.yaml", 0o755)
    tree_files.write_text(tree, "config.yaml", "w: 4\n")
    assert (tree / "config.yaml").stat().st_mode & 0o777 == 0o755


def test_a_fifo_or_a_directory_is_not_a_file(tree):
    os.mkfifo(tree / "pipe")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        tree_files.read_bytes(tree, "pipe")  # returns at once: a fifo is never opened for a blocking read
    with pytest.raises(UnsafePathError, match="not a regular file"):
        tree_files.write_text(tree, "sub", "x")


@pytest.mark.parametrize("rel, says", [
    ("/etc/passwd", "absolute"), ("\\etc", "absolute"), ("../x", "'..'"), ("sub/../../x", "'..'"),
    ("a\0b", "NUL"), ("", "names no file"), (".", "names no file"),
])
def test_paths_that_leave_the_tree_are_refused(tree, rel, says):
    with pytest.raises(UnsafePathError, match=says):
        tree_files.write_text(tree, rel, "x")


GIT_NAMES = [".git", ".GIT", ".Git", ".gIT", ".git.", ".git ", ".git. .", "GIT~1", "git~2",
             ".git::$INDEX_ALLOCATION", ".g\u200cit", "\ufeff.git"]


@pytest.mark.parametrize("name", GIT_NAMES)
def test_every_spelling_of_git_s_own_directory_is_refused(tree, name):
    assert tree_files.is_git_name(name)
    for rel in (f"{name}/hooks/post-commit", f"src/{name}/config", name):
        assert tree_files.git_component(rel) == name
        with pytest.raises(UnsafePathError, match="inside git's own files"):
            tree_files.write_text(tree, rel, "#!/bin/sh\n")
    assert not [p for p in tree.rglob("*") if "git" in p.name.lower()]


@pytest.mark.parametrize("name", [".gitignore", ".github", "git", ".gitx", ".git.bak", "my.git", "a.GIT"])
def test_names_that_only_look_like_git_are_ordinary(name):
    assert not tree_files.is_git_name(name)


def test_a_refusal_fails_one_candidate():
    assert issubclass(UnsafePathError, CandidateError)
