"""Lineage in git: every candidate a commit on its own ref, every record a JSON git note.

- candidate ``k`` of generation ``g`` of run ``R``: ``refs/progenitor/R/g<g>/c<k>``, whose
  parent is the champion it was built on;
- the run's champion: ``refs/progenitor/R/champion``; the commit the run started from:
  ``refs/progenitor/R/base``;
- each candidate's record: a JSON note under ``refs/notes/progenitor``.

Nothing is deleted and the user's branches, index and working tree are never touched:
candidates are built in temporary worktrees, refs are written with ``update-ref``.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from progenitor.boundary.walk import remove_tree
from progenitor.candidate.keys import IDENTITY, REF_ROOT
from progenitor.errors import CandidateError, ModelBehaviorError, UserError
from progenitor.lineage import blobs

if TYPE_CHECKING:
    from progenitor.task.spec import TaskSpec

NOTES_REF = "refs/notes/progenitor"

def open_repo(path: Path):
    """The git repository whose work tree root is exactly ``path``.

    A directory inside another repository (``examples/digits`` inside progenitor's own
    checkout) is refused, so that a run never writes refs into the enclosing repository.
    """
    import git

    path = Path(path).resolve()
    if not path.is_dir():
        raise UserError(f"{path} is not a directory")
    try:
        repo = git.Repo(path, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UserError(
            f"{path} is not the root of a git repository; run 'git init' there and commit your "
            f"model code, or 'progenitor init --example digits NEWDIR' for a fresh model repo"
        ) from None
    if repo.bare or Path(repo.working_tree_dir).resolve() != path:
        raise UserError(f"{path} is not the root of a git work tree")
    if not repo.head.is_valid():
        raise UserError(f"{path} has no commit yet; commit your model code (the human baseline) first")
    return repo


class Lineage:
    """Candidate commits, champion refs and records of one model repo."""

    def __init__(self, repo_dir: Path):
        self.repo = open_repo(repo_dir)
        self.root = Path(self.repo.working_tree_dir)
        self.git = self.repo.git
        self._worktrees = threading.Lock()
        """git's worktree administration (add, remove, prune) one at a time: the coder and the
        reviewer work on several candidates at once, each in its own worktree."""

    # -- refs -------------------------------------------------------------------------------
    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def resolve(self, ref: str) -> Optional[str]:
        try:
            return self.git.rev_parse("--verify", "--quiet", ref + "^{commit}").strip() or None
        except Exception:  # noqa: BLE001 - GitCommandError: the ref does not exist
            return None

    def uncommitted(self) -> list[str]:
        """Paths with uncommitted changes in the user's work tree (progenitor's own dir excluded)."""
        out = self.git.status("--porcelain", "--untracked-files=no")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def set_ref(self, ref: str, sha: str, message: str = "progenitor") -> None:
        self.git.update_ref("-m", message, ref, sha)

    def refs(self, run: str) -> dict[str, str]:
        """Every ref of a run: name -> sha."""
        out = self.git.for_each_ref("--format=%(refname) %(objectname)", f"{REF_ROOT}/{run}/")
        return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())

    def runs(self) -> list[str]:
        out = self.git.for_each_ref("--format=%(refname)", f"{REF_ROOT}/")
        return sorted({line.split("/")[2] for line in out.splitlines() if line.count("/") >= 3})

    # -- candidates ------------------------------------------------------------------------
    @contextmanager
    def worktree(self, sha: str) -> Iterator[Path]:
        """A temporary detached worktree at ``sha``, removed afterwards."""
        tmp = Path(tempfile.mkdtemp(prefix="progenitor-wt-"))
        path = tmp / "tree"
        try:
            with self._worktrees:
                self.git.worktree("add", "--detach", "--quiet", str(path), sha)
            yield path
        finally:
            with self._worktrees:
                try:
                    self.git.worktree("remove", "--force", str(path))
                except Exception:  # noqa: BLE001 - already gone: prune below
                    pass
                with suppress(OSError):
                    remove_tree(tmp)  # whatever depth the edit left
                self.git.worktree("prune")

    def commit_candidate(self, ref: str, parent: str, edit: Callable[[Path], Optional[str]],
                         message: str = "progenitor candidate") -> str:
        """Build a candidate commit on ``ref`` from ``parent``: ``edit`` changes a worktree and
        returns the commit message (or None: ``message`` is used).

        Idempotent: if ``ref`` already exists (a resumed run), its commit is returned and
        ``edit`` is not called again. Whatever goes wrong with this one candidate - git
        refusing one of its paths, the edit failing on the disk - is a ``CandidateError``
        naming it (the candidate fails, the run goes on); nothing is left behind and no ref
        is written, so a resume tries again and fails the same way, without a crash.
        """
        import git

        existing = self.resolve(ref)
        if existing:
            return existing
        try:
            with self.worktree(parent) as tree:
                pointer = (tree / ".git").read_bytes()
                given = edit(tree)
                message = given if isinstance(given, str) and given else message
                if not (tree / ".git").is_file() or (tree / ".git").read_bytes() != pointer:
                    # Committing now could write into another repository (or the user's branch).
                    raise ModelBehaviorError("the edit changed the worktree's .git pointer; refusing to commit")
                wt = self.repo.__class__(tree)
                wt.git.add("--all")
                env = {**os.environ, **IDENTITY}
                # --allow-empty: a proposal equal to its parent is still a candidate with a record.
                # A NUL byte cannot travel in an argument (nor be kept in a commit message).
                wt.git.commit("--quiet", "--allow-empty", "--no-verify", "-m", message.replace("\0", ""), env=env)
                sha = wt.head.commit.hexsha
        except git.GitCommandError as exc:
            raise CandidateError(f"git refused to commit the candidate: {git_reason(exc)}") from None
        except OSError as exc:
            raise CandidateError(f"the candidate's tree could not be written: {exc.strerror or exc}") from None
        self.set_ref(ref, sha, f"progenitor: candidate {ref}")
        return sha

    def changed_files(self, parent: str, sha: str) -> list[dict]:
        """Files a candidate changed: [{path, status, old_path}] (renames detected).

        Read with ``-z``: paths come exactly as committed, never C-quoted (git quotes a name
        with a tab, a quote or a non-ASCII byte, which would hide it from every check)."""
        fields = self.git.diff("--name-status", "-z", "-M", "--no-color", parent, sha).split("\0")
        changes = []
        i = 0
        while i < len(fields) and fields[i]:
            status = fields[i][0]
            if status == "R":
                changes.append({"path": fields[i + 2], "status": "R", "old_path": fields[i + 1]})
                i += 3
            else:
                changes.append({"path": fields[i + 1], "status": status if status in "AMDT" else "M"})
                i += 2
        return changes

    def diff_text(self, parent: str, sha: str) -> str:
        """The unified diff of a candidate against ``parent`` (what a reviewer reads)."""
        return self.git.diff("--no-color", "--no-ext-diff", "-M", parent, sha)

    def diff_stats(self, parent: str, sha: str) -> dict:
        out = self.git.diff("--numstat", parent, sha)
        added = removed = files = 0
        for line in out.splitlines():
            a, r, _ = line.split("\t", 2)
            files += 1
            added += int(a) if a.isdigit() else 0
            removed += int(r) if r.isdigit() else 0
        return {"files": files, "added": added, "removed": removed,
                "fingerprint": self.change_fingerprint(parent, sha)}

    def change_fingerprint(self, parent: str, sha: str) -> str:
        """A hash of what the change adds and removes, file by file, whitespace aside and
        without its context lines, so that the same change made on another champion, or
        worded otherwise by the architect, hashes alike ("" for an empty change)."""
        import hashlib
        import re

        out = self.git.diff("--no-color", "--no-ext-diff", "-U0", "-w", "--no-renames", parent, sha)
        changes: dict[str, list[str]] = {}
        path = ""
        for line in out.splitlines():
            if line.startswith("+++ ") or line.startswith("--- "):
                path = line[6:] if line[4:6] in ("a/", "b/") else path
            elif line[:1] in "+-" and not line.startswith(("+++", "---")):
                changes.setdefault(path, []).append(line[0] + re.sub(r"\s+", " ", line[1:]).strip())
        if not changes:
            return ""
        canon = "\n".join(f"{p}\n" + "\n".join(sorted(lines)) for p, lines in sorted(changes.items()))
        return hashlib.sha256(canon.encode("utf-8", "surrogateescape")).hexdigest()[:16]

    # -- trees -------------------------------------------------------------------------------
    # A candidate's tree (and the base's) is always written from the commit's blobs, with no
    # .gitattributes processing (``blobs``): what is reviewed is byte for byte what is trained.
    def archive(self, sha: str) -> bytes:
        """The commit's tree as a tar archive from its blobs (no .git: a sandbox copy leads nowhere)."""
        return blobs.tree_tar(self.root, sha)

    def export(self, sha: str, dest: Path) -> Path:
        """Write the commit's tree into ``dest`` from its blobs (a fresh copy, no .git, links kept as links)."""
        return blobs.write_tree(self.root, sha, dest, links=True)

    @contextmanager
    def tree(self, sha: str) -> Iterator[Path]:
        """A temporary copy of the commit's tree, written from its blobs (links kept as links, so
        the review sees them), removed afterwards. ``CandidateDataError`` if the tree is beyond
        ``boundary.walk.TREE``."""
        tmp = Path(tempfile.mkdtemp(prefix="progenitor-tree-"))
        try:
            yield self.export(sha, tmp / "tree")
        finally:
            with suppress(OSError):
                remove_tree(tmp)

    def blob(self, sha: str, path: str) -> Optional[bytes]:
        """The bytes of ``path`` as committed at ``sha`` (no attribute, filter or line-ending
        conversion applied), or None when that commit has no such file."""
        try:
            return self.git.cat_file("blob", f"{sha}:{path}", stdout_as_string=False, strip_newline_in_stdout=False)
        except Exception:  # noqa: BLE001 - not in that commit
            return None

    def show(self, sha: str, path: str) -> Optional[str]:
        try:
            return self.git.show(f"{sha}:{path}")
        except Exception:  # noqa: BLE001 - not in that commit
            return None

    # -- notes ---------------------------------------------------------------------------------
    def spec_at(self, sha: str) -> "TaskSpec":
        """The task as committed at ``sha`` (what a run started there uses)."""
        from progenitor.task.spec import SPEC_FILE, load_spec_text

        text = self.show(sha, SPEC_FILE)
        if text is None:
            raise UserError(f"{self.root / SPEC_FILE} is not committed at {sha[:10]}; commit it first "
                            f"(runs read the committed task)")
        return load_spec_text(text, f"{self.root / SPEC_FILE} (commit {sha[:10]})")

    def write_note(self, sha: str, record: dict) -> None:
        """Attach (or replace) the JSON record of a commit; the notes ref keeps every version."""
        text = json.dumps(record, indent=2, sort_keys=True, default=str)
        env = {**os.environ, **IDENTITY}
        self.git.notes("--ref", NOTES_REF, "add", "--force", "--file", "-", sha, istream=_stdin(text), env=env)

    def read_note(self, sha: str) -> Optional[dict]:
        try:
            return json.loads(self.git.notes("--ref", NOTES_REF, "show", sha))
        except Exception:  # noqa: BLE001 - no note on that commit
            return None


def restore_worktree(tree: Path) -> None:
    """Put a temporary worktree back at its commit: tracked files as committed, nothing else."""
    import git

    wt = git.Repo(tree)
    wt.git.checkout("--force", "--", ".")
    wt.git.clean("-ffdxq")


def git_reason(exc: Exception) -> str:
    """The one line of a git failure a person needs: git's own message, without its prefix."""
    stderr = str(getattr(exc, "stderr", "") or exc).strip()
    stderr = stderr.removeprefix("stderr:").strip().removeprefix("'").removesuffix("'")  # GitPython's framing
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line.split(":", 1)[1].strip() if line.startswith(("error:", "fatal:")) else line for line in lines]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _stdin(text: str):
    handle = tempfile.TemporaryFile()
    handle.write(text.encode())
    handle.seek(0)
    return handle
