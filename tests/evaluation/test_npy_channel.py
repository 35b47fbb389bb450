"""The scoring channel's reader (``evaluation.npy_channel.read_outputs``): the file is written by
the candidate's code, in the process the harness runs, so whatever its bytes it is an array of
the promised shape or a ``CandidateError`` in one sentence, never another exception (which would
end the run as the platform's failure, and end its resume again)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from progenitor.errors import CandidateError
from progenitor.evaluation.npy_channel import read_outputs


def _npy(header: str) -> bytes:
    """A .npy 1.0 file whose header dictionary is ``header``, padded as numpy pads it, no data."""
    text = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


FOUND = [  # found by the review of issue 18: each escaped as TokenError, RecursionError or ValueError
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4, (}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4, " + "-" * 5000 + "1)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4, -2, -3), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4, -1), }",
]


@pytest.mark.parametrize("header", FOUND, ids=["token", "recursion", "negative", "minus-one"])
def test_a_header_numpy_cannot_read_is_a_reason(tmp_path, header):
    path = tmp_path / "outputs.npy"
    path.write_bytes(_npy(header))
    with pytest.raises(CandidateError, match="not a plain .npy array"):
        read_outputs(path, rows=4, ndim=(1, 2, 3), max_bytes=1 << 20)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=160))
@example(b"(" * 3000, 10)
def test_any_bytes_after_any_cut_of_a_good_file_are_outputs_or_a_reason(tmp_path, tail, cut):
    buf = io.BytesIO()
    np.save(buf, np.arange(8.0, dtype=np.float32).reshape(4, 2))
    path = tmp_path / "outputs.npy"
    path.write_bytes(buf.getvalue()[:cut] + tail)
    try:
        out = read_outputs(path, rows=4, ndim=(2,), max_bytes=1 << 20)
    except CandidateError:
        return
    assert out.shape == (4, 2) and np.isfinite(out).all()


def test_a_good_file_reads_back(tmp_path):
    path = tmp_path / "outputs.npy"
    np.save(path, np.arange(8.0).reshape(4, 2))
    assert read_outputs(path, rows=4, ndim=(2,), max_bytes=1 << 20).tolist() == np.arange(8.0).reshape(4, 2).tolist()
