"""A candidate's tree is written from its commit's blobs, with no .gitattributes processing: the
bytes trained (in the sandbox), the bytes reviewed and the blobs committed are the same bytes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import subprocess
import tarfile
from pathlib import Path

import pytest

from progenitor.compute.base import TrainJob, execute_job, unpack
from progenitor.errors import CandidateDataError
from progenitor.lineage import IDENTITY, Lineage
from progenitor.sandbox.base import Limits

FILES = {
    "subst.py": "x = 1  # $Format:%nx = 2$\n",              # export-subst: a comment becomes a line of code
    "ident.py": "version = '$Id$'\n",                        # ident: rewritten to the blob's id
    "ignored.py": "hidden = False\n",                        # export-ignore: left out of the tree
    "crlf.txt": "a\nb\n",                                     # text eol=crlf: line endings converted
    "filtered.py": "abc = 1\n",                               # filter: a configured program rewrites it
    "utf16.txt": "plain\n",                                   # working-tree-encoding: re-encoded
    "run.sh": "#!/bin/sh\necho ran\n",
}
ATTRIBUTES = """\
subst.py export-subst
ident.py ident
ignored.py export-ignore
crlf.txt text eol=crlf
filtered.py filter=rot
utf16.txt working-tree-encoding=UTF-16
"""

HASH_TREE = """
import hashlib, json, os, sys
found = {}
for root, dirs, files in os.walk("."):
    for name in files:
        path = os.path.join(root, name)
        with open(path, "rb") as f:
            found[os.path.relpath(path, ".")] = hashlib.sha256(f.read()).hexdigest()
with open(os.path.join(sys.argv[1], "hashes.json"), "w") as f:
    json.dump(found, f)
"""


def git(repo: Path, *args: str, **kw) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **IDENTITY}, **kw).stdout


@pytest.fixture(scope="module")
def attributed(tmp_path_factory) -> tuple[Path, str]:
    """A repo whose commit holds every attribute that changes bytes, a filter configured for it,
    an executable, a link and a submodule."""
    repo = tmp_path_factory.mktemp("attributes") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "filter.rot.smudge", "tr a-z b-za")
    git(repo, "config", "filter.rot.clean", "cat")
    for name, text in FILES.items():
        (repo / name).write_text(text)
    os.chmod(repo / "run.sh", 0o755)
    os.symlink("subst.py", repo / "alias.py")
    git(repo, "add", "--all")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},vendored")
    git(repo, "commit", "-q", "-m", "files")
    (repo / ".gitattributes").write_text(ATTRIBUTES)  # committed after: the blobs above stay as they are
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    return repo, git(repo, "rev-parse", "HEAD").strip()


def blob_hashes(repo: Path, sha: str) -> dict[str, str]:
    """sha256 of each regular file's blob, read with git cat-file (no attribute applies)."""
    found = {}
    for line in git(repo, "ls-tree", "-r", sha).splitlines():
        meta, path = line.split("\t", 1)
        mode, _, blob = meta.split()
        if mode in ("100644", "100755"):
            data = subprocess.run(["git", "-C", str(repo), "cat-file", "blob", blob], check=True,
                                  capture_output=True).stdout
            found[path] = hashlib.sha256(data).hexdigest()
    return found


def dir_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_git_archive_itself_changes_the_bytes(attributed):
    """The class the tree writer closes: git archive applies every attribute (the test's own check)."""
    repo, sha = attributed
    raw = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", sha], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        archived = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    assert "ignored.py" not in archived
    assert archived["subst.py"] == b"x = 1  # \nx = 2\n"
    assert archived["ident.py"] != FILES["ident.py"].encode()
    assert archived["crlf.txt"] == b"a\r\nb\r\n"


def test_the_archive_the_export_and_the_review_tree_hold_the_blobs(attributed, tmp_path):
    repo, sha = attributed
    lineage, blobs = Lineage(repo), blob_hashes(repo, sha)
    assert set(blobs) == set(FILES) | {".gitattributes"}
    unpack(lineage.archive(sha), tmp_path / "archive")
    assert dir_hashes(tmp_path / "archive") == blobs
    assert os.stat(tmp_path / "archive" / "run.sh").st_mode & 0o777 == 0o755
    assert os.stat(tmp_path / "archive" / "subst.py").st_mode & 0o777 == 0o644
    assert not os.path.lexists(tmp_path / "archive" / "alias.py"), "a training tree has no links"
    assert (tmp_path / "archive" / "vendored").is_dir()
    assert dir_hashes(lineage.export(sha, tmp_path / "export")) == blobs
    with lineage.tree(sha) as tree:
        assert dir_hashes(tree) == blobs
        assert os.readlink(tree / "alias.py") == "subst.py", "the review sees a link as a link"
        where = tree.parent
    assert not where.exists()


def test_the_bytes_trained_in_the_sandbox_are_the_blobs_reviewed(attributed):
    repo, sha = attributed
    lineage = Lineage(repo)
    job = TrainJob(key="t/g1/c0", command=f"python3 -c {shlex.quote(HASH_TREE)} {{out}}",
                   tree_archive=lineage.archive(sha), limits=Limits(wall_time=60), backend="process")
    result = execute_job(job, None)
    assert result.sandbox.ok, result.sandbox
    with tarfile.open(fileobj=io.BytesIO(result.outputs_archive)) as tar:
        trained = json.loads(tar.extractfile("hashes.json").read())
    with lineage.tree(sha) as tree:
        reviewed = dir_hashes(tree)
    assert trained == reviewed == blob_hashes(repo, sha)


def _commit_tree(repo: Path, entries: list[str]) -> str:
    blob = subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=b"x\n", check=True,
                          capture_output=True).stdout.decode().strip()
    tree = subprocess.run(["git", "-C", str(repo), "mktree"], check=True, capture_output=True,
                          input="".join(f"100644 blob {blob}\t{name}\n" for name in entries).encode()).stdout
    return git(repo, "commit-tree", tree.decode().strip(), "-m", "crafted")


def test_a_tree_beyond_the_bounds_or_naming_git_is_refused_before_anything_is_written(attributed, tmp_path):
    repo, _ = attributed
    lineage = Lineage(repo)
    for names, why in [([".GIT"], "git's own files"), (["git~1"], "git's own files"), (["..."], "names no file")]:
        sha = _commit_tree(repo, names).strip()
        with pytest.raises(CandidateDataError, match=why):
            lineage.archive(sha)
        with pytest.raises(CandidateDataError, match=why):
            with lineage.tree(sha):
                pass
    blob = subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=b"x = 1\n", check=True,
                          capture_output=True).stdout.decode().strip()
    index = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "index")}
    subprocess.run(["git", "-C", str(repo), "update-index", "--add", "--cacheinfo",
                    f"100644,{blob},{'d/' * 1200}x.py"], check=True, env=index)
    tree = subprocess.run(["git", "-C", str(repo), "write-tree"], check=True, env=index, capture_output=True,
                          text=True).stdout.strip()
    sha = git(repo, "commit-tree", tree, "-m", "a file 1,200 directories deep").strip()
    with pytest.raises(CandidateDataError, match="1201 levels deep"):
        lineage.archive(sha)
