"""The predictions file: one plain .npy array of real numbers, or a reason; nothing else is read."""

from __future__ import annotations

import io
import os
import resource
import struct
import time
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from progenitor.boundary.arrays import MAX_HEADER, read_array
from progenitor.errors import CandidateDataError
from progenitor.evaluation.scorer import check_predictions
from progenitor.task.spec import Predictions


def save(path, array, allow_pickle=False):
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=allow_pickle)
    return path


@pytest.mark.parametrize("array", [
    np.arange(5, dtype=np.float64), np.arange(6, dtype=np.int8).reshape(2, 3), np.array([True, False]),
    np.asfortranarray(np.arange(12, dtype=">f4").reshape(3, 4)), np.arange(4, dtype=np.uint64), np.zeros(3, np.float16),
])
def test_plain_real_arrays_are_read_as_saved(tmp_path, array):
    got = read_array(save(tmp_path / "p.npy", array))
    assert got.dtype == array.dtype and got.shape == array.shape and np.array_equal(got, array)


@pytest.mark.parametrize("array, why", [
    (np.array([1 + 2j]), "not a real number"),
    (np.array([1, 2], dtype="timedelta64[s]"), "not a real number"),
    (np.array(["2024-01-01"], dtype="datetime64[D]"), "not a real number"),
    (np.array(["a", "b"]), "not a real number"),
    (np.array([b"a"]), "not a real number"),
    (np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]), "not a real number"),
    (np.zeros(2, dtype="V8"), "not a real number"),
])
def test_other_dtypes_are_refused(tmp_path, array, why):
    with pytest.raises(CandidateDataError, match=why):
        read_array(save(tmp_path / "p.npy", array))


def test_object_arrays_are_refused_and_never_unpickled(tmp_path):
    path = save(tmp_path / "p.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(CandidateDataError, match="not a real number"):
        read_array(path)


def test_a_zip_under_the_npy_name_is_refused_at_its_first_bytes(tmp_path):
    path = tmp_path / "predictions.npy"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(20_000):
            z.writestr(f"{i}.npy", b"")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    reason = check_predictions(Predictions(file="predictions.npy"), tmp_path, tmp_path)
    assert time.perf_counter() - started < 0.5
    assert "zip archive" in reason
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 10_000  # KiB: nothing listed


def test_a_header_that_lies_about_the_data_is_refused(tmp_path):
    path = save(tmp_path / "p.npy", np.arange(100, dtype=np.float64))
    data = path.read_bytes()
    path.write_bytes(data[:-8])
    with pytest.raises(CandidateDataError, match="promises 800 bytes"):
        read_array(path)
    path.write_bytes(data + b"\0" * 8)
    with pytest.raises(CandidateDataError, match="promises 800 bytes"):
        read_array(path)
    path.write_bytes(_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (10**12, 10**12), }"))
    with pytest.raises(CandidateDataError):
        read_array(path)
    path.write_bytes(_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000), }"))
    with pytest.raises(CandidateDataError, match="promises"):
        read_array(path)


def _with_header(header: str, version=(1, 0)) -> bytes:
    text = header.encode("latin1")
    pad = 16 - (10 + len(text) + 1) % 16
    text += b" " * pad + b"\n"
    length = struct.pack("<H", len(text)) if version == (1, 0) else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text


def test_headers_too_long_of_unknown_versions_or_not_python_literals_are_refused(tmp_path):
    path = tmp_path / "p.npy"
    for content, why in [
        (_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': '" + "a" * MAX_HEADER + "'}",
                      (2, 0)), "header cannot be read"),
        (_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", (3, 0)), "version 3.0"),
        (_with_header("__import__('os').system('true')"), "header cannot be read"),
        (_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }"), "header cannot be read|not a shape"),
        (b"\x93NUMP", "not a .npy"), (b"", "not a .npy"), (b"PK\x05\x06" + b"\0" * 18, "not a .npy"),
    ]:
        path.write_bytes(content)
        with pytest.raises(CandidateDataError, match=why):
            read_array(path)


def test_links_fifos_and_directories_are_not_read(tmp_path):
    target = save(tmp_path / "real.npy", np.arange(3.0))
    os.symlink(target, tmp_path / "link.npy")
    os.mkfifo(tmp_path / "fifo.npy")
    (tmp_path / "dir.npy").mkdir()
    for name in ("link.npy", "fifo.npy", "dir.npy"):
        with pytest.raises(CandidateDataError):
            read_array(tmp_path / name)
    assert "no predictions" in check_predictions(Predictions(file="link.npy"), tmp_path, tmp_path)


def test_the_check_counts_nan_and_inf_and_rows(tmp_path):
    labels = save(tmp_path / "labels.npy", np.zeros(4))
    expect = Predictions(file="p.npy", match=labels.name)
    save(tmp_path / "p.npy", np.array([1.0, np.nan, np.nan, 2.0]))
    assert "NaN (2 values)" in check_predictions(expect, tmp_path, tmp_path)
    save(tmp_path / "p.npy", np.array([1.0, np.inf, 0, 0], dtype=np.float16))
    assert "infinite values (1 values)" in check_predictions(expect, tmp_path, tmp_path)
    save(tmp_path / "p.npy", np.zeros(3))
    assert "mis-shaped" in check_predictions(expect, tmp_path, tmp_path)
    save(tmp_path / "p.npy", np.zeros((4, 2), dtype=np.int32))
    assert check_predictions(expect, tmp_path, tmp_path) is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_any_bytes_are_an_array_or_a_reason(tmp_path, data):
    path = tmp_path / "fuzz.npy"
    path.write_bytes(data)
    try:
        array = read_array(path)
    except CandidateDataError:
        return
    assert array.dtype.kind in "biuf"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=200))
@example(b"\0" * 10 + b"(", 117)  # found by this test: numpy's header reader raised tokenize's TokenError
def test_a_valid_header_with_any_tail_is_an_array_or_a_reason(tmp_path, tail, cut):
    buf = io.BytesIO()
    np.save(buf, np.arange(3.0))
    path = tmp_path / "fuzz.npy"
    path.write_bytes(buf.getvalue()[:cut] + tail)
    try:
        read_array(path)
    except CandidateDataError:
        pass


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
def test_every_dtype_numpy_saves_is_read_back_or_refused_for_its_kind(tmp_path, array):
    path = save(tmp_path / "fuzz.npy", array)
    if array.dtype.kind in "biuf":
        assert np.array_equal(read_array(path), array, equal_nan=array.dtype.kind == "f")
    else:
        with pytest.raises(CandidateDataError):
            read_array(path)
