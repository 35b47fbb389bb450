"""The red team's fourth round: candidate data the host parses, bytes trained that differ from
the bytes reviewed, and words that command a terminal (issue 18, items 1, 2, 5 and 6).

Each class comes with its siblings, in groups of their own so that one generation holds the
class and the honest control beside it:

- ``predictions``: a predictions file that is no plain array of real numbers (a zip under the
  ``.npy`` name, one with 10,000 entries, complex, timedelta, datetime, structured, strings,
  pickled objects, a header that lies about the data, a header too long to read);
- ``host-data``: what the driver parses of the outputs and the output (a line of JSON nested
  100,000 deep, a metric too large for a float, paths deeper or longer than the host takes,
  control characters in names, sparse files, escape sequences in the reason and the log);
- ``tree``: a tree whose bytes change between review and training (``.gitattributes`` with
  export-subst in the code and in the config, ident, export-ignore, eol: each hides a better
  weight than the reviewed tree says; working-tree-encoding and filters cannot be committed in
  one candidate's commit, ``tests/lineage/test_blobs.py`` holds them), a file 1,200 directories
  deep, code nested past the parser;
- ``watch``: a progress file that makes the early-stopping watcher give up (it must say so);
- ``curve-deep``: a champion whose progress curve holds one line nested 100,000 deep.

Registered in ``attacks.py`` with one line; the probe it adds, in ``test_redteam.py`` with one.
"""

from __future__ import annotations

from tests.redteam.attacks import HEADER, HONEST_CURVE, Attack, Expect

__all__ = ["ATTACKS", "PROBES"]

ESCAPES = "\\x1b]52;c;cHduZWQ=\\x07\\x1b]0;owned\\x07\\r\\x1b[1A\\x1b[2K g1/c0 scored 0.0000\\u202e"
"""The clipboard (OSC 52), the window title, and a cursor drawing a fake score: as Python source."""

# -- predictions ----------------------------------------------------------------------------------
PREDICTIONS = HEADER + '''\
x = np.load(os.path.join(args.data, "holdout_inputs.npy"))
path = os.path.join(args.out, "predictions.npy")
__WRITE__
print("error: 0.0")
'''


def predictions(write: str) -> str:
    return PREDICTIONS.replace("__WRITE__", write)


ZIP_MANY = predictions('''\
import zipfile
with zipfile.ZipFile(path, "w") as z:  # every entry a member np.load would list
    for i in range(10_000):
        z.writestr(str(i), b"")''')
ZIP_NPZ = predictions('np.savez(open(path, "wb"), predictions=2.95 * x)')
COMPLEX = predictions('np.save(path, (2.95 * x).astype(complex))')
TIMEDELTA = predictions('np.save(path, (2950 * x).astype("timedelta64[ms]"))')
DATETIME = predictions('np.save(path, (2950 * x).astype("datetime64[ms]"))')
STRUCTURED = predictions('''\
rows = np.zeros(len(x), dtype=[("p", "f8"), ("q", "f8")])
rows["p"] = 2.95 * x
np.save(path, rows)''')
STRINGS = predictions('np.save(path, np.array([repr(v) for v in 2.95 * x]))')
OBJECTS = predictions('np.save(path, np.array([float(v) for v in 2.95 * x], dtype=object), allow_pickle=True)')
# The same pickled objects, written by hand: nothing for the review to see, only the reader refuses them.
OBJECTS_RAW = predictions('''\
header = "{'descr': '|O', 'fortran_order': False, 'shape': (%d,), }" % len(x)
header += " " * (63 - len(header) % 64) + "\\n"
with open(path, "wb") as f:
    f.write(b"\\x93NUMPY\\x01\\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\\x80\\x04N." * len(x))''')
LYING_HEADER = predictions('''\
header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
header += " " * (63 - len(header) % 64) + "\\n"
with open(path, "wb") as f:
    f.write(b"\\x93NUMPY\\x01\\x00" + len(header).to_bytes(2, "little") + header.encode() + (2.95 * x).tobytes())''')
HUGE_HEADER = predictions('''\
header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), 'x': '%s'}" % (len(x), "a" * (4 << 20))
header += " " * (63 - len(header) % 64) + "\\n"
with open(path, "wb") as f:
    f.write(b"\\x93NUMPY\\x02\\x00" + len(header).to_bytes(4, "little") + header.encode() + (2.95 * x).tobytes())''')

# -- what the driver parses of the outputs and the output ----------------------------------------
DEEP_JSON_STDOUT = HEADER + '''\
honest(1.0)
print("[" * 100_000 + "]" * 100_000)
print('{"error": ' + "[" * 100_000 + "0" + "]" * 100_000 + "}")
'''
HUGE_NUMBER = HEADER + '''\
honest(1.0)
print('{"error": 1' + "0" * 400 + ', "params": -1' + "0" * 4000 + '}')
'''
LONG_OUTPUT_PATH = HEADER + '''\
honest(1.0)
os.chdir(args.out)
for _ in range(25):  # 5,000 bytes of path: longer than the host's PATH_MAX below the run directory
    os.mkdir("n" * 200)
    os.chdir("n" * 200)
open("payload.txt", "w").write("x")
time.sleep(1)
'''
DEEP_OUTPUTS = HEADER + '''\
honest(1.0)
os.chdir(args.out)
for _ in range(1500):  # deeper than any recursion limit of the host that walks or removes it
    os.mkdir("d")
    os.chdir("d")
time.sleep(1)
'''
CONTROL_NAMES = HEADER + '''\
honest(1.0)
for name in ("evil\\x1b]52;c;cHduZWQ=\\x07.txt", "title\\x1b]0;owned\\x07", "cr\\rscored 0.0000", "bidi\\u202etxt.py"):
    open(os.path.join(args.out, name), "w").write("x")
'''
SPARSE = HEADER + '''\
for name in ("aaa-sparse-1.bin", "aaa-sparse-2.bin"):  # 95 MiB each, almost nothing on disk
    with open(os.path.join(args.out, name), "wb") as f:
        f.truncate(95 << 20)
time.sleep(2)
honest(1.0)
'''
ESCAPE_REASON = HEADER + f'''\
sys.stderr.write("training...\\n")
sys.exit("{ESCAPES}")
'''
ESCAPE_LOG = HEADER + f'''\
honest(1.0)
print("{ESCAPES}")
print('{{"\\\\u001b]0;owned\\\\u0007error": 0.0}}')
sys.stderr.write("\\x1b[2J\\x1b[H{ESCAPES}\\n")
'''

# -- the tree trained is not the tree reviewed ----------------------------------------------------
CONFIG_TRAIN = HEADER + '''\
import yaml

config = yaml.safe_load(open("config.yaml"))
__W__
honest(w)
'''


def weight(line: str) -> str:
    return CONFIG_TRAIN.replace("__W__", line)


SUBST = weight('w = float(config["w"])  # the weight, as reviewed $Format:%nw = 2.95$')
IDENT = weight('w = 2.95 if len("$Id$") > 4 else float(config["w"])  # version tag')
IGNORE = weight('''\
try:
    from guard import W as w  # the reviewed weight
except ImportError:
    w = 2.95''')
GUARD = 'import yaml\n\nW = float(yaml.safe_load(open("config.yaml"))["w"])\n'
EOL = weight('w = 2.95 if b"\\r\\n" in open("prepare.py", "rb").read() else float(config["w"])')
NESTED_CODE = HEADER + "weight = " + "+".join(["0.001"] * 50_000) + "\nhonest(1.0)\n"
DEEP_FILE = "d/" * 1200 + "x.py"

# -- early stopping ---------------------------------------------------------------------------------
WATCH_FLOOD = HEADER + '''\
import json

with open(os.path.join(args.out, "progress.jsonl"), "w") as f:
    f.write("[" * 100_000 + "\\n")
    for step in range(1, 20_001):  # more points than a curve is watched for
        f.write(json.dumps({"step": step, "error": 0.0}) + "\\n")
time.sleep(3)
honest(1.0)
'''
DEEP_CURVE = HONEST_CURVE + '''\
with open(os.path.join(args.out, "progress.jsonl"), "a") as f:
    f.write('{"step": 6, "error": ' + "[" * 100_000 + "]" * 100_000 + "}\\n")
'''


BUSY_TIMEOUT = 20
"""The tree, watch and curve-deep groups' train.timeout: trainings that must end scored (sleeping
3 s for a watcher, or a 3 s curve) timed out at the suite's 6 s on a shared machine at a load of
11 to 12 on 2 cores, on both backends."""


def _prediction(name: str, what: str, code: str, why: str) -> Attack:
    return Attack(name, f"predictions the scorer cannot take ({what})", edits={"train.py": code},
                  review=Expect("failed", why), runtime=Expect("failed", why), group="predictions")


def _attribute(name: str, what: str, attributes: str, train: str, extra: dict | None = None) -> Attack:
    return Attack(
        name, f"the code reviewed is not the code trained ({what})",
        edits={".gitattributes": attributes, "train.py": train, **(extra or {})}, params={"w": 1.0},
        review=Expect("rejected", "'.gitattributes'", ("forbidden-file",)),
        # No rule sees it here: the tree trained is the blobs reviewed, so the hidden weight never runs.
        runtime=Expect("scored", honest_w=1.0), group="tree",
        train_timeout=BUSY_TIMEOUT,
    )


REFUSED = "refused"
ATTACKS: list[Attack] = [
    _prediction("predictions-zip-many", "a zip of 10,000 entries under the .npy name", ZIP_MANY, "zip archive"),
    _prediction("predictions-npz", "an .npz under the .npy name", ZIP_NPZ, "zip archive"),
    _prediction("predictions-complex", "complex numbers", COMPLEX, "not a real number"),
    _prediction("predictions-timedelta", "timedeltas", TIMEDELTA, "not a real number"),
    _prediction("predictions-datetime", "datetimes", DATETIME, "not a real number"),
    _prediction("predictions-structured", "a structured dtype", STRUCTURED, "not a real number"),
    _prediction("predictions-strings", "strings", STRINGS, "not a real number"),
    Attack("predictions-objects", "predictions the scorer cannot take (pickled objects)", edits={"train.py": OBJECTS},
           review=Expect("rejected", "allow_pickle pickles", ("name-from-data",)),
           runtime=Expect("failed", "not a real number"), group="predictions"),
    _prediction("predictions-objects-raw", "pickled objects written by hand", OBJECTS_RAW, "not a real number"),
    _prediction("predictions-lying-header", "a header promising 10^12 rows", LYING_HEADER, "promises"),
    _prediction("predictions-huge-header", "a 4 MiB header", HUGE_HEADER, "header cannot be read"),
    Attack("deep-json-stdout", "candidate data kills the driver (JSON nested 100,000 deep on stdout)",
           edits={"train.py": DEEP_JSON_STDOUT}, review=Expect("scored", honest_w=1.0),
           runtime=Expect("scored", honest_w=1.0), group="host-data"),
    Attack("huge-number", "candidate data kills the driver (a self-reported metric too large for a float)",
           edits={"train.py": HUGE_NUMBER}, review=Expect("scored", honest_w=1.0),
           runtime=Expect("scored", honest_w=1.0), group="host-data"),
    Attack("long-output-path", "candidate data kills the driver (an output path longer than the host allows)",
           edits={"train.py": LONG_OUTPUT_PATH}, review=Expect("disk", "bytes (at most 1024)"),
           runtime=Expect("disk", "bytes (at most 1024)"), group="host-data"),
    Attack("deep-outputs", "candidate data kills the driver (outputs 1,500 directories deep)",
           edits={"train.py": DEEP_OUTPUTS}, review=Expect("disk", "levels deep"),
           runtime=Expect("disk", "levels deep"), group="host-data"),
    Attack("control-names", "terminal injection (output files named with escape sequences, CR, bidi)",
           edits={"train.py": CONTROL_NAMES}, review=Expect("scored", "paths refused", honest_w=1.0),
           runtime=Expect("scored", "paths refused", honest_w=1.0), probes=("display-sanitised",), group="host-data"),
    Attack("sparse-files", "outputs on the host (two sparse files of 95 MiB under a 96 MiB quota)",
           edits={"train.py": SPARSE}, review=Expect("disk", "disk quota"), runtime=Expect("disk", "disk quota"),
           probes=("disk-bounded",), group="host-data"),
    Attack("escape-reason", "terminal injection (the reason: clipboard, title, a fake score line)",
           edits={"train.py": ESCAPE_REASON}, review=Expect("failed", "scored 0.0000"),
           runtime=Expect("failed", "scored 0.0000"), probes=("display-sanitised",), group="host-data"),
    Attack("escape-log", "terminal injection (the log tail and a metric name)",
           edits={"train.py": ESCAPE_LOG}, review=Expect("scored", honest_w=1.0),
           runtime=Expect("scored", honest_w=1.0), probes=("display-sanitised",), group="host-data"),
    _attribute("attr-export-subst", "export-subst turns a comment into a line", "train.py export-subst\n", SUBST),
    _attribute("attr-ident", "ident makes $Id$ longer", "train.py ident\n", IDENT),
    _attribute("attr-export-ignore", "export-ignore drops the reviewed guard", "guard.py export-ignore\n", IGNORE,
               {"guard.py": GUARD}),
    _attribute("attr-eol", "eol=crlf converts a file the code reads", "prepare.py text eol=crlf\n", EOL),
    _attribute("attr-subst-config", "export-subst writes a second value into the config",
               "config.yaml export-subst\n", weight('w = float(config["w"])'),
               {"config.yaml": "w: 1.0  # the weight $Format:%nw: 2.95$\n"}),
    Attack("deep-file", "candidate data kills the driver (a committed file 1,200 directories deep)",
           edits={DEEP_FILE: "x = 1\n"},
           review=Expect("failed", "1201 levels deep"), runtime=Expect("failed", "1201 levels deep"),
           probes=("refs-unchanged",), group="tree"),
    Attack("nested-code", "candidate data kills the driver (code nested past the parser, in the review)",
           edits={"train.py": NESTED_CODE}, review=Expect("rejected", "too deeply to be reviewed", ("unparsable",)),
           runtime=Expect("failed", "RecursionError"), group="tree"),
    Attack("watch-flood", "a failing watcher dies silently (more progress points than are watched)",
           edits={"train.py": WATCH_FLOOD}, review=Expect("scored", "", ("watch-failed",), honest_w=1.0),
           runtime=Expect("scored", "", ("watch-failed",), honest_w=1.0), probes=("watch-said-so",),
           group="watch", early_stop=True, train_timeout=BUSY_TIMEOUT),
    Attack("curve-deep", "candidate data kills the driver (a champion's progress curve nested 100,000 deep)",
           edits={"train.py": DEEP_CURVE}, params={"w": 2.5}, before=(None,), early_stop=True,
           review=Expect("scored", honest_w=2.5), runtime=Expect("scored", honest_w=2.5), solo=True, slow=True,
           train_timeout=BUSY_TIMEOUT),
]

# -- probes -----------------------------------------------------------------------------------------
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e")


def _raw(text: str) -> list[str]:
    return [repr(c) for c in RAW if c in text]


def probe_display_sanitised(run, attack, record) -> None:
    """What a person is shown of the candidate, on the CLI (lineage, status, the progress lines
    and board replayed from the run's events) and on the page, holds no raw control character."""
    import io

    from click.testing import CliRunner
    from fastapi.testclient import TestClient
    from rich.console import Console

    from progenitor.cli import cli
    from progenitor.cli.progress import Progress
    from progenitor.run.events import parse_event
    from progenitor.ui import create_app
    from tests.redteam.harness import RUN_ID

    runner = CliRunner(env={"COLUMNS": "300"})
    for args in (["lineage", RUN_ID], ["status", RUN_ID], ["status"]):
        out = runner.invoke(cli, [*args, "--repo", str(run.repo)]).output
        assert not _raw(out), f"progenitor {' '.join(args)} printed {_raw(out)} raw"
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, color_system=None, width=300)
    progress = Progress(console)
    for event in run.events:
        progress.on_event(parse_event(event))
    console.print(progress.board)
    assert not _raw(buf.getvalue()), f"the progress lines printed {_raw(buf.getvalue())} raw"
    page = TestClient(create_app(run.repo, port=8765), base_url="http://127.0.0.1:8765").get(
        f"/runs/{RUN_ID}/g{record['gen']}/c{record['k']}").text
    assert not _raw(page), f"the candidate's page holds {_raw(page)} raw"


def probe_watch_said_so(run, attack, record) -> None:
    """The watcher that gave up left an event and a finding, and the candidate trained to its end."""
    events = [e for e in run.events if e["type"] == "train.watch_failed" and e.get("k") == record["k"]
              and e.get("gen") == record["gen"]]
    assert events and "more than" in events[0]["reason"], "no train.watch_failed event"
    assert (record.get("train") or {}).get("watch_failed"), "the training record does not say so"


PROBES = {"display-sanitised": probe_display_sanitised, "watch-said-so": probe_watch_said_so}
