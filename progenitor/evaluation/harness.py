"""The scoring harness: progenitor's own code, copied into the scoring sandbox beside the inputs.

It imports the candidate's predict entry point from the candidate's (read-only) tree, feeds it
the inputs in batches and writes what it returns, as one raw ``.npy`` array, to the sandbox's
outputs. That is all: it decides nothing. The candidate's code runs in this same process and
could change anything here, so the host trusts none of it: it reads the array back with its
own bounded parser and checks its shape, dtype and values itself. The harness only makes the
honest path easy and turns the usual mistakes into one clear line on stderr.

Self-contained on purpose (the standard library and numpy, no progenitor import): it runs with
whatever Python the sandbox has. Usage: ``python harness.py FEED OUT`` where FEED holds
``plan.json``, ``inputs.npy`` and ``artifacts/``.
"""

import importlib.util
import json
import os
import sys
import traceback

import numpy as np

EXIT_ENTRY, EXIT_CALL, EXIT_OUTPUT = 3, 4, 5
"""Exit codes the host turns into a candidate's reason (the line on stderr says more)."""


def fail(code, message):
    sys.stderr.write("harness: " + message + "\n")
    sys.stderr.flush()
    os._exit(code)


def load_entry(module_file, function):
    """The candidate's function, imported from its tree (the working directory)."""
    tree = os.getcwd()
    path = os.path.join(tree, module_file)
    if not os.path.isfile(path):
        fail(EXIT_ENTRY, "the predict entry point's file %s does not exist in the candidate's tree" % module_file)
    sys.path.insert(0, os.path.dirname(path))  # its own imports (``from model import GPT``) resolve there
    name = os.path.splitext(os.path.basename(module_file))[0]
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException:  # noqa: BLE001 - whatever the candidate's import raised
        fail(EXIT_ENTRY, "importing %s failed: %s" % (module_file, last_error()))
    entry = getattr(module, function, None)
    if not callable(entry):
        fail(EXIT_ENTRY, "%s has no function %s (the predict entry point)" % (module_file, function))
    return entry


def last_error():
    lines = traceback.format_exc().strip().splitlines()
    return (lines[-1] if lines else "unknown error")[:300]


def as_array(result, rows):
    try:
        array = np.asarray(result)
    except BaseException:  # noqa: BLE001
        fail(EXIT_OUTPUT, "predict returned something that is not an array: %s" % last_error())
    if array.ndim == 0 or array.shape[0] != rows:
        fail(EXIT_OUTPUT, "predict returned shape %s for a batch of %d rows; the first axis must be the rows"
             % (tuple(array.shape), rows))
    if array.dtype.kind not in "biuf":
        fail(EXIT_OUTPUT, "predict returned dtype %s; return numbers (float or int)" % array.dtype)
    return array.astype(np.float32) if array.dtype.kind == "f" else array


def main(feed, out):
    with open(os.path.join(feed, "plan.json")) as f:
        plan = json.load(f)
    entry = load_entry(plan["module_file"], plan["function"])
    inputs = np.load(os.path.join(feed, "inputs.npy"), mmap_mode="r", allow_pickle=False)
    artifacts = os.path.join(feed, "artifacts")
    batch, written = plan["batch_size"], None
    for start in range(0, len(inputs), batch):
        rows = np.array(inputs[start:start + batch])
        try:
            result = entry(rows, artifacts)
        except BaseException:  # noqa: BLE001 - the candidate's crash, reported as its reason
            fail(EXIT_CALL, "predict raised on rows %d-%d: %s" % (start, start + len(rows) - 1, last_error()))
        array = as_array(result, len(rows))
        if plan["keep"] == "last":
            if array.ndim < 3:
                fail(EXIT_OUTPUT, "predict returned shape %s; a window's outputs are (rows, positions, vocabulary)"
                     % (tuple(array.shape),))
            array = array[:, -1]
        if written is None:
            shape = (len(inputs),) + array.shape[1:]
            written = np.lib.format.open_memmap(os.path.join(out, "outputs.npy"), mode="w+", dtype=array.dtype,
                                                shape=shape)
        if array.shape[1:] != written.shape[1:] or array.dtype != written.dtype:
            fail(EXIT_OUTPUT, "predict returned shape %s of %s after %s of %s; every batch must agree"
                 % (tuple(array.shape[1:]), array.dtype, tuple(written.shape[1:]), written.dtype))
        written[start:start + len(rows)] = array
    if written is not None:
        written.flush()
    print("harness: %d rows scored" % len(inputs))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
