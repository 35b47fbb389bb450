"""The job around a sandbox, on every backend: the disk quota (bytes and files) while the
candidate runs, and its outputs brought back capped and sanitised (``compute.jobdir``,
``compute.outputs``). Each test runs ``execute_job``, what every executor's worker runs."""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

import pytest

from progenitor.compute.base import OUTPUT_MAX_ENTRIES, TrainJob, execute_job, tree_archive
from progenitor.compute.jobdir import PREFIX, JobDir, sweep_mounts
from progenitor.compute.outputs import pack_outputs, unpack_outputs
from progenitor.sandbox.base import Limits
from tests.helpers.jobdisk import JobDisk

JOB_BACKENDS = ["process", pytest.param("process-unshare", marks=pytest.mark.slow),
                pytest.param("docker", marks=pytest.mark.docker)]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the job tmpfs is root's")


TREE = tree_archive({"train.py": "print('training')\n"})


@pytest.fixture(params=JOB_BACKENDS)
def job(request):
    """``job(command, **fields)`` -> the JobResult of ``command`` on this backend."""
    name = request.param
    if name == "docker":
        from progenitor.sandbox.docker import DockerSandbox
        from tests.conftest import skip_unless_docker

        check = DockerSandbox().check()
        skip_unless_docker(request.config, check.available, check.detail)
        backend, options = "docker", {}
    elif name == "process-unshare":
        if os.geteuid() != 0:
            pytest.skip("the unshare mode is root's")
        backend, options = "process", {"isolation": "unshare"}
    else:
        backend, options = "process", {}

    def run(command: str, limits: dict | None = None, **fields):
        spec = {"wall_time": 60.0, "disk_bytes": 64 << 20, **(limits or {})}
        return execute_job(TrainJob(key="t/g1/c1", command=command, tree_archive=TREE, limits=Limits(**spec),
                                    backend=backend, backend_options=options, **fields), None)

    return run


FILLER = ("i=0; while [ $i -lt 1000 ]; do head -c 8388608 /dev/urandom > {out}/aaa-$i.bin || exit 1; "
          "i=$((i+1)); done; echo never")
"""8 MiB files, at most 8 GiB: a quota that does not hold fails the test, not the machine."""


@pytest.mark.loop
def test_a_disk_filler_is_killed_at_its_quota_and_the_host_keeps_its_space(job):
    with JobDisk() as disk:
        started = time.monotonic()
        result = job(FILLER)
        took = time.monotonic() - started
    box = result.sandbox
    assert box.status == "disk", box
    assert box.reason.startswith("disk quota: its tree and outputs reached the 64 MiB quota"), box.reason
    assert "never" not in box.stdout
    assert took < 30
    assert len(disk.peaks) == 1, f"expected one job directory of this test, saw {sorted(disk.peaks)}"
    assert 32 << 20 <= disk.peak <= (64 << 20) + (32 << 20), f"its job directory held {disk.peak >> 20} MiB"
    print(f"killed at the quota after {box.duration:.2f} s; its job directory held {disk.peak >> 20} MiB at most")


def test_one_file_past_the_quota_is_refused(job):
    result = job("head -c 100000000 /dev/zero > {out}/big; echo never", limits={"disk_bytes": 32 << 20})
    assert result.sandbox.status == "disk", result.sandbox
    assert "disk quota" in result.sandbox.reason


@pytest.mark.loop
def test_many_small_files_are_killed_at_the_file_quota(job):
    result = job("mkdir {out}/m; i=0; while [ $i -lt 300000 ]; do : > {out}/m/$i || exit 1; i=$((i+1)); done",
                 disk_files=2000)
    assert result.sandbox.status == "disk", result.sandbox
    assert "reached 2000 files and directories (train.resources.files)" in result.sandbox.reason


PLANT = """
import os, sys
out = sys.argv[1]
open(os.path.join(out, "predictions.npy"), "w").write("p")
for git in (".git", ".GIT", ".gIt"):
    d = os.path.join(out, "nested", git, "hooks")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(out, "nested", git, "config"), "w").write("[core]\\n\\tfsmonitor = touch pwned\\n")
    open(os.path.join(d, "post-checkout"), "w").write("touch pwned\\n")
    os.chmod(os.path.join(d, "post-checkout"), 0o755)
os.mkfifo(os.path.join(out, "fifo"))
os.symlink("/etc/passwd", os.path.join(out, "link"))
open(os.path.join(out, "run.sh"), "w").write("echo run\\n")
os.chmod(os.path.join(out, "run.sh"), 0o6755)
os.makedirs(os.path.join(out, "sub"))
open(os.path.join(out, "sub", "keep.txt"), "w").write("kept")
"""


def _unpacked(result, tmp_path: Path) -> Path:
    dest = tmp_path / "back"
    unpack_outputs(result.outputs_archive, dest)
    return dest


def test_outputs_come_back_without_git_links_fifos_or_exec_bits(job, tmp_path):
    result = job(f"python3 -c '{PLANT}' {{out}}")
    assert result.sandbox.ok, result.sandbox
    back = _unpacked(result, tmp_path)
    names = sorted(str(p.relative_to(back)) for p in back.rglob("*"))
    assert names == ["nested", "predictions.npy", "run.sh", "sub", "sub/keep.txt"]
    for path in back.rglob("*"):
        mode = os.lstat(path).st_mode
        assert stat.S_IMODE(mode) == (0o755 if stat.S_ISDIR(mode) else 0o644), (path, oct(mode))
    assert "dropped 5" in result.sandbox.reason and result.outputs_note


@pytest.mark.loop
def test_the_entries_cap_keeps_predictions_and_says_so(job, tmp_path):
    command = (f"mkdir {{out}}/aaa; cd {{out}}/aaa && seq 1 {OUTPUT_MAX_ENTRIES + 2000} | xargs touch; "
               "echo p > {out}/predictions.npy")
    result = job(command, outputs_first=["predictions.npy"], disk_files=50_000)
    assert result.sandbox.ok, result.sandbox
    assert result.outputs_truncated
    assert f"outputs cut: more than {OUTPUT_MAX_ENTRIES} files and directories" in result.sandbox.reason
    back = _unpacked(result, tmp_path)
    assert (back / "predictions.npy").read_text() == "p\n"
    assert sum(1 for _ in back.rglob("*")) == OUTPUT_MAX_ENTRIES


@pytest.mark.loop
def test_header_bytes_count_against_the_output_cap(job, tmp_path):
    # 3,000 empty files: no content at all, but 1.5 MB of tar headers.
    result = job("mkdir {out}/e; cd {out}/e && seq 1 3000 | xargs touch", output_cap_bytes=1 << 20)
    assert result.outputs_truncated and "output cap" in result.sandbox.reason
    assert len(result.outputs_archive) <= 1 << 20


def test_a_needed_output_that_does_not_fit_fails_the_job(job):
    result = job("head -c 2000000 /dev/urandom > {out}/predictions.npy; head -c 10 /dev/zero > {out}/aaa",
                 output_cap_bytes=1 << 20, outputs_first=["predictions.npy"])
    assert result.sandbox.status == "failed"
    assert result.sandbox.reason.startswith("outputs cut: predictions.npy did not fit the output cap")


@pytest.mark.loop
def test_packing_and_unpacking_many_files_is_bounded(tmp_path):
    out = tmp_path / "out"
    (out / "d").mkdir(parents=True)
    for i in range(50_000):
        (out / "d" / f"f{i}").touch()
    started = time.monotonic()
    packed = pack_outputs(out, 256 << 20, OUTPUT_MAX_ENTRIES)
    packing = time.monotonic() - started
    started = time.monotonic()
    written = unpack_outputs(packed.archive, tmp_path / "back")
    unpacking = time.monotonic() - started
    # The bound is on the work (entries kept), not on seconds: a timed assertion fails on a busy
    # machine and proves nothing on a quiet one. The seconds are printed for whoever looks.
    assert packed.entries == written == OUTPUT_MAX_ENTRIES and "more than" in packed.cut
    print(f"{OUTPUT_MAX_ENTRIES} entries of 50,000: packed in {packing:.2f} s, unpacked in {unpacking:.2f} s")


def test_packing_stops_at_its_deadline(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for i in range(2000):
        (out / f"f{i}").write_bytes(b"x" * 4096)
    packed = pack_outputs(out, 256 << 20, None, seconds=1e-6)
    assert "took too long" in packed.cut and packed.entries < 2000


@needs_root
def test_a_job_tmpfs_left_by_a_dead_driver_is_swept(tmp_path):
    import ctypes

    dead = 2 ** 22 + 12345  # above pid_max's default: no such process
    point = tmp_path / f"{PREFIX}{dead}-leftover"
    point.mkdir()
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mount(b"tmpfs", str(point).encode(), b"tmpfs", 0, b"size=1m") == 0
    (point / "file").write_text("left")
    assert sweep_mounts(tmp_path) == 1
    assert not point.exists()
    with open("/proc/self/mountinfo") as f:
        assert str(point) not in f.read()


def test_nothing_of_a_job_is_left_behind(job):
    before = set(Path(tempfile.gettempdir()).glob(f"{PREFIX}{os.getpid()}-*"))
    job(FILLER)
    assert set(Path(tempfile.gettempdir()).glob(f"{PREFIX}{os.getpid()}-*")) == before
    with open("/proc/self/mountinfo") as f:
        assert f"{PREFIX}{os.getpid()}-" not in f.read()


def test_without_root_the_quota_is_a_walk_that_stops_at_the_cap(tmp_path):
    job = JobDir(tmp_path, disk_bytes=1 << 20, files=100, mounted=False)
    job.tree.mkdir()
    job.out.mkdir()
    assert job.over() is None and job.poll_seconds >= 0.2
    (job.out / "big").write_bytes(os.urandom(2 << 20))
    assert "reached the 1 MiB quota" in job.over()
    (job.out / "big").unlink()
    for i in range(150):
        (job.out / f"f{i}").touch()
    assert job.usage()[1] == 100, "the walk should stop at the cap"
    assert "reached 100 files and directories" in job.over()


@needs_root
def test_a_tree_larger_than_the_quota_is_a_disk_failure_before_anything_runs():
    forty = tree_archive({f"f{i}.py": "" for i in range(40)})
    result = execute_job(TrainJob(key="t/g1/c1", command="echo ran", tree_archive=forty,
                                  limits=Limits(disk_bytes=16 << 20), disk_files=20), None)
    assert result.sandbox.status == "disk" and "tree does not fit its disk quota" in result.sandbox.reason
    assert "ran" not in result.sandbox.stdout


@pytest.mark.loop
def test_where_no_tmpfs_can_be_seen_the_watcher_holds_the_quota(job, monkeypatch):
    """A Docker daemon in another mount namespace (or no root): the quota is a walk, and a
    writer passes it by at most what it writes between two looks."""
    import progenitor.compute.jobdir as jobdir

    monkeypatch.setattr(jobdir, "is_root", lambda: False)  # the job dir is then never a tmpfs
    with JobDisk() as disk:
        result = job(FILLER)
    assert result.sandbox.status == "disk", result.sandbox
    assert "reached the 64 MiB quota" in result.sandbox.reason
    print(f"watched: killed after {result.sandbox.duration:.2f} s, its job directory held {disk.peak >> 20} MiB at most")
    assert len(disk.peaks) == 1, f"expected one job directory of this test, saw {sorted(disk.peaks)}"
    assert 32 << 20 <= disk.peak <= (64 << 20) + (512 << 20), f"its job directory held {disk.peak >> 20} MiB"


def test_removing_a_job_dir_never_changes_its_parent_whatever_fails(tmp_path, monkeypatch):
    """The job dir's parent is the machine's temp directory: a removal that fails (a mount
    still busy, a candidate's file still being written) must leave its mode alone."""
    import errno

    from progenitor.compute.jobdir import remove_tree

    parent = tmp_path / "tmp"
    parent.mkdir()
    parent.chmod(0o1777)
    job = parent / f"{PREFIX}1-x"
    (job / "out" / "sub").mkdir(parents=True)
    (job / "out" / "sub").chmod(0o000)  # as a candidate may leave it
    real_rmdir = os.rmdir

    def busy(path, *args, **kwargs):
        if os.fspath(path) == str(job):
            raise OSError(errno.EBUSY, "Device or resource busy", str(job))
        return real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", busy)
    remove_tree(job)
    assert stat.S_IMODE(parent.stat().st_mode) == 0o1777
    assert job.exists() and not (job / "out").exists(), "everything inside was removed"
