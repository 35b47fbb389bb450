"""The task spec: what ``progenitor.yaml`` at a model repo's root declares.

Every model is ``extra="forbid"`` so that a misspelt key is an error, not a silent
default. ``load_spec`` turns pydantic's errors into sentences (``task/validation.py``), one
per problem, each naming the file, the field, the bad value and the fix.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from progenitor.errors import SpecError
from progenitor.task.placeholders import ALLOWED, check_placeholders, placeholders_in
from progenitor.task.validation import validate_file

SPEC_FILE = "progenitor.yaml"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: Union[str, int]) -> int:
    """``"2g"`` -> bytes. Integers are taken as bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size; write it like 512m or 2g")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _placeholders(field: str):
    """A validator: the command uses only the placeholders its field allows."""

    def check(cls, v: str) -> str:
        check_placeholders(v, ALLOWED[field])
        return v

    return field_validator(field.split(".")[-1])(classmethod(check))


class Objective(_Strict):
    metric: str
    """Name of the scorer's metric that selection optimises (e.g. ``accuracy``)."""
    goal: Literal["maximize", "minimize"] = "maximize"
    """Whether a larger or a smaller value is better."""
    target: Optional[float] = None
    """Stop the run once the champion reaches this value (optional)."""
    min_delta: float = 0.0
    """A candidate must beat the champion by more than this to be promoted."""
    range: Optional[tuple[float, float]] = None
    """The range one example's score lies in, when the metric is a mean over examples
    (accuracy: [0, 1]). With it, the summary bounds how much of a gain the luck of selecting
    among many candidates on one holdout could explain."""
    significance: Optional[float] = Field(0.05, gt=0, lt=1)
    """With per-example scores from the scorer (``{scores}/per_example.npy``): a candidate is
    promoted only when its gain over the champion holds in a paired test over the holdout
    examples at this level, divided by the number of candidates it was chosen from (exact sign
    test for 0/1 scores, paired bootstrap otherwise). null: no test, the gain alone decides."""
    repeats: int = Field(1, ge=1, le=10)
    """Trainings of each of the best candidates (and of the baseline) before a promotion, with
    seeds 0..N-1 (``{seed}`` in ``train.command``); their mean decides. 1: one training each."""
    repeat_top: int = Field(2, ge=1, le=8)
    """How many of a generation's best candidates that beat the champion once are trained again
    (with ``repeats`` > 1)."""

    @model_validator(mode="after")
    def _range(self) -> "Objective":
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"'range' {list(self.range)} must be [low, high] with low < high; swap them")
        return self

    def better(self, a: float, b: float) -> bool:
        """Is ``a`` better than ``b`` by more than ``min_delta``?"""
        return a > b + self.min_delta if self.goal == "maximize" else a < b - self.min_delta

    def reached(self, value: float) -> bool:
        if self.target is None:
            return False
        return value >= self.target if self.goal == "maximize" else value <= self.target


class Resources(_Strict):
    cpus: float = Field(1.0, gt=0)
    """CPU cores for one candidate's training (fractions allowed)."""
    gpus: float = Field(0.0, ge=0)
    """GPUs for one candidate's training (fractions allowed with Ray)."""
    memory: str = "2g"
    """Memory limit, like ``512m`` or ``2g``."""
    processes: int = Field(512, ge=1)
    """Most processes/threads the candidate may start (stops fork bombs)."""
    disk: str = "2g"
    """Disk quota of the candidate's tree and outputs while it trains, like ``512m``; a candidate
    that reaches it is killed with the status ``disk``."""
    files: int = Field(100_000, ge=16)
    """Most files and directories its tree and outputs may hold while it trains (part of the quota)."""
    outputs: str = "256m"
    """Most bytes of outputs brought back to the scorer, tar headers counted; more is cut, and
    the candidate's reason says so."""

    @field_validator("memory", "disk", "outputs")
    @classmethod
    def _size(cls, v: str) -> str:
        if parse_size(v) < 1 << 20:
            raise ValueError(f"{v!r} is below 1m; write it like 512m or 2g")
        return v

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory)

    @property
    def disk_bytes(self) -> int:
        return parse_size(self.disk)

    @property
    def output_bytes(self) -> int:
        return parse_size(self.outputs)


class EarlyStop(_Strict):
    metric: str
    """Key in the candidate's progress lines (e.g. ``val_accuracy``) compared with the champion's curve."""
    trusted_metric: Optional[str] = None
    """The scorer metric that checks the champion's curve before it prunes anyone (default:
    ``metric`` itself): its last point must lie within ``scorer.self_report_gap`` of it. A
    curve the scorer cannot check is not used (early stopping is off for that generation)."""
    goal: Literal["maximize", "minimize"] = "maximize"
    """Whether a larger or a smaller value of ``metric`` is better."""
    rule: Literal["wilcoxon", "median"] = "wilcoxon"
    """Optuna pruner that decides: a signed-rank test over shared steps, or the median rule."""
    margin: float = Field(0.0, ge=0)
    """How far behind the champion, in the metric's units, counts as clearly behind."""
    warmup_steps: int = Field(3, ge=1)
    """Progress points a candidate reports before it may be stopped."""


class Train(_Strict):
    command: str
    """Shell command run in the candidate's sandbox; ``{data}``, ``{out}`` and ``{tree}`` are filled in."""
    timeout: float = Field(600.0, gt=0)
    """Wall-clock seconds before the candidate is killed."""
    resources: Resources = Resources()
    """What one candidate's training may use."""
    progress: Optional[str] = "progress.jsonl"
    """File in ``{out}`` where the candidate may append intermediate metrics as JSON lines."""
    early_stop: Optional[EarlyStop] = None
    """Stop a candidate that is clearly behind the champion at the same step (needs ``progress``)."""
    keep_outputs: Literal["champion", "all", "none"] = "champion"
    """Whose outputs stay in the run directory once a generation is decided: ``champion`` (the
    baseline's and each promoted champion's: a revert may need them, and early stopping reads
    the champion's curve), ``all``, or ``none`` (early stopping then has no curve to compare
    with). ``progenitor gc`` applies the same rule to runs afterwards."""

    _command = _placeholders("train.command")


class TestSplit(_Strict):
    inputs: str
    """File in ``{data}`` with the test split's inputs: visible to candidates, which predict on it."""
    labels: str
    """File in ``{data}`` with the test split's labels: seen only by the trusted scorer."""


class Data(_Strict):
    prepare: str
    """Trusted command (from the base commit) that writes the data splits into ``{data}``, once per run."""
    visible: list[str] = ["train*", "holdout_inputs*"]
    """Glob patterns of files in ``{data}`` that a candidate may read; everything else stays hidden."""
    hidden: list[str] = []
    """Glob patterns of files in ``{data}`` that no candidate may see, nor any copy of them: a visible
    pattern matching one, or a visible file holding its contents (identical, or a large share of its
    blocks), refuses the run. The labels of the holdout and the test split are always hidden."""
    timeout: float = Field(600.0, gt=0)
    """Wall-clock seconds the prepare command may take."""
    test: Optional[TestSplit] = None
    """A final test split the loop never selects on: scored for the baseline and for each
    champion when it is promoted, so the run's last number is an honest one."""

    _prepare = _placeholders("data.prepare")


class Predictions(_Strict):
    file: str = "predictions.npy"
    """File in the candidate's ``{out}`` that holds its predictions (``.npy``)."""
    match: Optional[str] = None
    """Data file (e.g. ``holdout_labels.npy``) whose length the predictions must have."""


class TestScorer(_Strict):
    command: str
    """Trusted command that scores the test split (``{out}``, ``{data}`` filled in), printing
    ``metric: value`` lines like the holdout's scorer; its metrics are recorded as ``test_<metric>``."""
    predictions: Optional[Predictions] = None
    """What progenitor checks before the test scorer runs (e.g. ``{file: test_predictions.npy, match: test_labels.npy}``)."""

    _command = _placeholders("scorer.test.command")


class Scorer(_Strict):
    command: str
    """Trusted command (from the base commit) that prints ``metric: value`` lines or a JSON
    object line (``{"rmse": 54.9}``); ``{data}`` and ``{out}`` are filled in."""
    timeout: float = Field(300.0, gt=0)
    """Wall-clock seconds the scorer may take."""
    predictions: Optional[Predictions] = Predictions()
    """What progenitor checks before the scorer runs (missing, NaN, infinite, mis-shaped)."""
    self_report_gap: float = Field(0.05, ge=0)
    """A gap larger than this between what the candidate printed and what the scorer measured is a finding."""
    test: Optional[TestScorer] = None
    """How the test split (``data.test``) is scored."""
    parallel: int = Field(2, ge=1, le=64)
    """Candidates scored at once on the driver, next to the labels, each as its training ends
    (with ``evaluate: model`` each is a scoring sandbox: it takes a core while it runs)."""

    _command = _placeholders("scorer.command")


_ENTRY = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_./-]*\.py):([A-Za-z_][A-Za-z0-9_]*)$")


class Sequence(_Strict):
    """A next-token objective: the holdout is one stream of token ids that is its own label."""

    context: int = Field(ge=2, le=1 << 16)
    """Tokens in one window the harness feeds; every candidate is scored on the same windows."""
    positions: Literal["all", "last"] = "all"
    """``all``: every position of a window is scored and the causality probe checks that no output
    depends on later input; ``last``: only each window's last position is scored, which is causal
    by construction (exact, and ``context`` times slower per position scored)."""
    probes: int = Field(256, ge=0, le=1 << 16)
    """Probe windows of the causality probe (``positions: all``), shuffled in among the real ones."""
    tolerance: float = Field(1e-3, gt=0)
    """Largest change (in nats of log-probability) a probe may cause at a position it must not affect."""


class ModelEval(_Strict):
    """How the scoring sandbox runs a candidate's model (``evaluate: model``)."""

    entry: str
    """The candidate's predict entry point, ``file.py:function`` in its tree, called as
    ``function(inputs, artifacts)`` on each batch of inputs (``artifacts``: the directory holding
    the safetensors files its training wrote); it returns one numeric output per input row."""
    artifacts: list[str] = Field(["model.safetensors"], min_length=1)
    """Files in the candidate's ``{out}`` that its predict function loads: safetensors only, and the
    only files of its outputs the scoring sandbox sees. Parameters are counted from their headers."""
    inputs: str = "holdout_inputs.npy"
    """File in ``{data}`` the harness feeds, a .npy array (with ``sequence``: the holdout's token ids,
    which stay hidden from training: they are their own labels)."""
    batch_size: int = Field(64, ge=1, le=1 << 16)
    """Rows (windows) per call of the predict function."""
    timeout: float = Field(300.0, gt=0)
    """Wall-clock seconds one scoring sandbox may take."""
    sequence: Optional[Sequence] = None
    """A next-token objective: the harness feeds context windows, progenitor normalises the outputs."""

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: str) -> str:
        match = _ENTRY.match(v)
        if not match or ".." in Path(match.group(1)).parts or match.group(1).startswith("/"):
            raise ValueError(f"{v!r} is not an entry point; write it like model.py:predict (a file in the tree, a function)")
        return v

    @field_validator("artifacts")
    @classmethod
    def _safetensors(cls, v: list[str]) -> list[str]:
        for name in v:
            if not name.endswith(".safetensors") or "/" in name or name.startswith("."):
                raise ValueError(f"artifact {name!r} must be a .safetensors file directly in {{out}} (weights only)")
        return v

    @property
    def module_file(self) -> str:
        return self.entry.rsplit(":", 1)[0]

    @property
    def function(self) -> str:
        return self.entry.rsplit(":", 1)[1]


def _entry_ref(value: Any) -> Any:
    return {"entry": value} if isinstance(value, str) else value


class Param(_Strict):
    type: Literal["int", "float", "categorical"]
    """Kind of knob."""
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    """Sample on a log scale (int and float)."""
    step: Optional[float] = None
    choices: Optional[list[Any]] = None
    """Allowed values (categorical)."""

    @model_validator(mode="after")
    def _check(self) -> "Param":
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"an {self.type} parameter needs 'low' and 'high'")
            if self.low >= self.high:
                raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError("a log-scale parameter needs 'low' > 0")
        return self


class SearchSpace(_Strict):
    file: str
    """The config file (YAML, JSON or TOML) the offline coder writes values into."""
    params: dict[str, Param]
    """Knobs by (dotted) key in that file."""
    flags: bool = False
    """Also pass each knob's value in ``file`` to the training as ``--name=value``, appended to
    ``train.command`` from the file in the commit being trained: for a repository configured by
    argparse or by Python config files, which then needs no rewrite (``task/flags.py``)."""

    @field_validator("file")
    @classmethod
    def _suffix(cls, v: str) -> str:
        if Path(v).suffix.lower() not in (".yaml", ".yml", ".json", ".toml"):
            raise ValueError(f"{v!r} must be a .yaml, .yml, .json or .toml file")
        return v


class Guard(_Strict):
    metric: str
    """Scorer metric the guard watches."""
    min: Optional[float] = None
    """The metric may not go below this."""
    max: Optional[float] = None
    """The metric may not go above this."""
    max_regression: Optional[float] = None
    """How much worse than the champion's value it may get (in the guard's ``goal`` direction)."""
    max_drift: Optional[float] = None
    """How much worse than the human baseline's value it may get, however many small steps it
    took to get there (default: ``max_regression``)."""
    goal: Literal["maximize", "minimize"] = "maximize"

    @model_validator(mode="after")
    def _some_bound(self) -> "Guard":
        if self.min is None and self.max is None and self.max_regression is None and self.max_drift is None:
            raise ValueError("a guard needs at least one of 'min', 'max', 'max_regression' or 'max_drift'")
        return self


class Budget(_Strict):
    generations: int = Field(3, ge=1)
    """Turns of the loop."""
    candidates: int = Field(4, ge=1, le=64)
    """Candidates proposed per generation."""
    cpu_hours: Optional[float] = Field(None, gt=0)
    """Stop after the generation in which the run's sandbox CPU-hours reach this."""
    gpu_hours: Optional[float] = Field(None, gt=0)
    """Stop after the generation in which the run's sandbox GPU-hours reach this."""
    wall_hours: Optional[float] = Field(None, gt=0)
    """Stop after the generation in which the run's wall time reaches this."""
    dollars: Optional[float] = Field(None, gt=0)
    """Stop after the generation in which LLM spend reaches this."""
    stall_after: int = Field(2, ge=0)
    """End the run (exit code 3, with the reason) after this many consecutive generations in which
    no candidate was trained: agents that keep failing should wake nobody up to an empty night. 0: never."""


class TrainingCost(_Strict):
    cpu_hours: Optional[float] = Field(None, ge=0)
    """Estimated sandbox CPU-hours of a generation's training."""
    gpu_hours: Optional[float] = Field(None, ge=0)
    """Estimated sandbox GPU-hours of a generation's training."""
    dollars: Optional[float] = Field(None, ge=0)
    """Estimated LLM dollars of a generation (the last generation's spend)."""

    @model_validator(mode="after")
    def _some_bound(self) -> "TrainingCost":
        if self.cpu_hours is None and self.gpu_hours is None and self.dollars is None:
            raise ValueError("give at least one of 'cpu_hours', 'gpu_hours' or 'dollars'")
        return self


class Oversight(_Strict):
    mode: Literal["auto", "approver", "auditor"] = "auto"
    """auto: decide by policy, and ask a person when a rule fires; approver: a person approves every
    promotion (and costly training); auditor: never wait, record everything, revert afterwards."""
    max_jump: Optional[float] = None
    """Escalate when the objective improves by more than this in one generation."""
    perfect: Union[float, Literal["auto"], None] = "auto"
    """The objective's perfect value, for the capability-jump checks. ``auto``: 0 for a minimized
    metric whose baseline is at least 0 (an error, a loss), 1 for a maximized one whose baseline
    lies in [0, 1] (an accuracy, an F1); a number sets it; null: the metric has none."""
    max_gain_ratio: Optional[float] = Field(100.0, gt=1)
    """While the lineage has no past gain to compare with (the first generation), a candidate
    that gets this many times closer to the perfect value than the champion is escalated as a
    possible capability jump (a perfect score from an imperfect champion always is). null: off."""
    approve_training_above: Optional[TrainingCost] = None
    """approver: ask a person before training a generation whose estimated cost is above any of these."""
    max_param_growth: Optional[float] = Field(None, gt=1)
    """Escalate when ``params_metric`` grows by more than this factor over the champion's."""
    params_metric: str = "params"
    """The scorer's metric that counts a model's parameters (for ``max_param_growth``)."""
    max_cost_growth: Optional[float] = Field(None, gt=1)
    """Escalate when a candidate's training cost (CPU- plus GPU-seconds) grows by more than this factor
    over the champion's."""
    max_relative_gain: Optional[float] = Field(0.4, gt=0)
    """While the lineage has fewer than two past gains to judge a gain by (the first generations),
    a gain larger than this fraction of the baseline's own value is escalated as a possible
    capability jump, whatever the metric's scale (a loss from 3.53 to 1.61 is 0.54). null: off."""
    poll_seconds: float = Field(0.5, gt=0, le=60)
    """How often a waiting run looks for a decision made elsewhere."""
    approvals: dict[str, int] = {}
    """How many different people must approve at a gate, by what opened it: the gate's kind
    (``training``, ``promotion``) or the rule of an escalating finding (``constitution-change``,
    ``capability-jump``, ``param-growth``, ``cost-growth``, ``dependency-change``); the largest
    that applies counts, 1 by default. Any rejection closes the gate."""
    require_signatures: bool = False
    """Every human decision at a gate must carry its person's SSH signature (``allowed_signers``
    says whose key is whose); ``progenitor audit verify`` refuses an unsigned one."""
    allowed_signers: Optional[str] = None
    """An allowed-signers file in the repo (the format of ``ssh-keygen -Y verify``, git's
    ``gpg.ssh.allowedSignersFile``): the keys that may sign decisions, by account name. Protected."""
    notify: Optional["Notify"] = None
    """Tell people when a gate opens: a command and/or a webhook."""

    @field_validator("approvals")
    @classmethod
    def _approvals(cls, value: dict[str, int]) -> dict[str, int]:
        for key, count in value.items():
            if key not in APPROVAL_KEYS:
                raise ValueError(f"unknown approvals key {key!r}; one of {', '.join(APPROVAL_KEYS)}")
            if not 1 <= count <= 10:
                raise ValueError(f"approvals.{key} must be between 1 and 10 people, not {count}")
        return value

    @model_validator(mode="after")
    def _signers(self) -> "Oversight":
        if self.require_signatures and not self.allowed_signers:
            raise ValueError("require_signatures needs allowed_signers: the file that says whose key is whose")
        return self


APPROVAL_KEYS = ("training", "promotion", "constitution-change", "capability-jump", "param-growth", "cost-growth",
                 "dependency-change")
"""What ``oversight.approvals`` may count people for: a gate's kind, or the rule of the escalating
finding that opened it."""


class Notify(_Strict):
    command: Optional[str] = None
    """A shell command run when a gate opens, the JSON (the gate's HITL request and the page's
    link) on its standard input; PROGENITOR_RUN, PROGENITOR_GATE and PROGENITOR_LINK set."""
    webhook: Optional[str] = None
    """A URL the same JSON is POSTed to (http or https)."""
    webhook_env: Optional[str] = None
    """The name of a variable holding the webhook's URL instead (a chat webhook's URL is a secret)."""
    secret_env: Optional[str] = None
    """The name of a variable holding a key: each POST then carries ``X-Progenitor-Signature:
    sha256=<HMAC of the body>`` so the receiver knows it came from here."""
    page_url: Optional[str] = None
    """The approval page's address as people reach it (``https://progenitor.example.org/``), for
    the link in each notice (default: the page on this machine, http://127.0.0.1:8765/)."""
    retries: int = Field(3, ge=1, le=10)
    """Attempts at each (the command, the webhook) before giving up; the audit log says which."""
    timeout: float = Field(10.0, gt=0, le=120)
    """Seconds one attempt may take."""
    backoff: float = Field(1.0, ge=0, le=60)
    """Seconds before the second attempt, doubled before each later one."""

    @model_validator(mode="after")
    def _something(self) -> "Notify":
        if not (self.command or self.webhook or self.webhook_env):
            raise ValueError("notify needs a command, a webhook or a webhook_env")
        if self.webhook and self.webhook_env:
            raise ValueError("give webhook or webhook_env, not both")
        if self.webhook and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(f"webhook must be an http:// or https:// URL, not {self.webhook!r}")
        for name in ("webhook_env", "secret_env"):
            value = getattr(self, name)
            if value is not None and not _ENV_NAME.match(value):
                raise ValueError(f"{name} is the name of an environment variable, not {value!r}")
        return self


Severity = Literal["info", "low", "medium", "high", "critical"]
"""How grave a safety finding is, least to most."""


class Safety(_Strict):
    constitution: Optional[str] = None
    """Protected file with the machine-checkable rules every generation inherits."""
    block_at: Severity = "high"
    """Findings at or above this severity reject a candidate before it runs."""
    bandit: bool = True
    """Run bandit on changed Python files."""


class Agents(_Strict):
    architect: str = "search"
    """Who proposes candidates: ``search`` (offline: Optuna over ``search_space``), ``llm`` (a language
    model reasons over the lineage and proposes code changes), ``mixed`` (the model proposes code
    changes, the search tunes their knobs) or another registered architect."""
    coder: str = "offline"
    """Who turns a proposal into a commit: ``offline`` (writes config values and given file edits),
    ``llm`` (a language model edits the code, and gets one fix attempt per training crash) or another
    registered coder."""
    reviewers: list[str] = []
    """Reviewers added to the static review, which every candidate always gets (``llm``: a
    constitutional review of the diff by a language model)."""
    brief: Optional[str] = None
    """Protected file with the human's research brief (goals, ideas worth trying, no-go areas) that
    the LLM architect reads first, like autoresearch's ``program.md``."""
    edit_docs: bool = False
    """Let the LLM agents read and change documentation files (``README*``, ``*.md``, ``*.rst``,
    ``docs/``). Off: they are listed by name only and an edit to one is refused, so a candidate cannot
    plant text for later architects, and a person's figures in them never reach a prompt."""


LLM_AGENTS = {"architect": ("llm", "mixed"), "coder": ("llm",), "reviewer": ("llm",)}
"""The built-in agents that call a language model, by role: they need an ``llm:`` section."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Endpoint(_Strict):
    """A model and where to reach it."""

    model: str = Field(min_length=1)
    """litellm's name for it: ``openai/gpt-4o-mini``, ``anthropic/claude-sonnet-4-5``, ``ollama/qwen2.5-coder``,
    ``hosted_vllm/<name>`` (with ``api_base``), ..."""
    api_base: Optional[str] = None
    """The server's URL (local models: Ollama, vLLM, any OpenAI-compatible server); default: ``llm.api_base``."""
    api_key_env: Optional[str] = None
    """Name of the environment variable that holds its key, never the key itself; default:
    ``llm.api_key_env``, else the provider's usual variable (``OPENAI_API_KEY``, ...), read by litellm."""

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be the name of an environment variable (like OPENAI_API_KEY), never the key itself")
        return v


def _model_ref(value: Any) -> Any:
    if isinstance(value, str):
        return {"model": value}
    if isinstance(value, (dict, Endpoint)):
        return value
    raise ValueError("must be a model name like openai/gpt-4o-mini, or a mapping {model, api_base, api_key_env}")


ModelRef = Annotated[Endpoint, BeforeValidator(_model_ref)]
"""A model by its litellm name (``openai/gpt-4o-mini``), or with its own endpoint (``{model, api_base, api_key_env}``)."""


class Price(_Strict):
    """What a model costs, for models litellm has no price for (local ones, new ones)."""

    input: float = Field(ge=0)
    """Dollars per million prompt tokens."""
    output: float = Field(ge=0)
    """Dollars per million completion tokens."""


def _json_mode(value: Any) -> Any:
    return {True: "auto", False: "off"}.get(value, value) if isinstance(value, bool) else value


JsonMode = Annotated[Literal["auto", "schema", "object", "off"], BeforeValidator(_json_mode)]
"""``json_mode``; ``true`` and ``false`` (its older values) read as ``auto`` and ``off``."""


class Llm(_Strict):
    """The language models of the LLM agents (litellm). Keys come from the environment only."""

    model: Optional[ModelRef] = None
    """The default model of every role."""
    architect: Optional[ModelRef] = None
    """The architect's model (default: ``model``)."""
    coder: Optional[ModelRef] = None
    """The coder's model (default: ``model``)."""
    reviewer: Optional[ModelRef] = None
    """The reviewer's model (default: ``model``)."""
    api_base: Optional[str] = None
    """Default server URL of every model that names none."""
    api_key_env: Optional[str] = None
    """Default name of the environment variable holding the key (never the key itself)."""
    fallbacks: list[ModelRef] = []
    """Models litellm tries, in order, when a call to the role's model fails (after its retries)."""
    timeout: float = Field(120.0, gt=0)
    """Seconds one request may take (litellm's ``timeout``); a request that takes longer is aborted,
    and counted at an estimate, since a provider may bill it."""
    retries: int = Field(2, ge=0, le=10)
    """Requests one call may resend after a transient failure (429, 5xx, a timeout), waiting as the
    provider's ``Retry-After`` says (else 1, 2, 4 ... s). A refused request (a 400, a context too
    long) is never resent."""
    repairs: int = Field(2, ge=0, le=5)
    """Times a reply that does not validate (or was cut at ``max_tokens``) goes back to the model, in
    the same conversation, with the validation error (or a request to continue)."""
    edit_attempts: int = Field(3, ge=1, le=10)
    """Replies the coder may give per candidate; edits that do not apply go back with the exact error."""
    max_tokens: int = Field(4096, ge=1)
    """Most tokens of one reply."""
    temperature: Optional[float] = Field(0.2, ge=0, le=2)
    """Sampling temperature (None: the provider's default)."""
    json_mode: JsonMode = "auto"
    """How a structured reply (the architect's, the reviewer's) is asked for: ``schema`` (the reply's
    JSON schema through ``response_format``), ``object`` (any JSON object), ``off`` (the prompt alone
    says what to write), ``auto`` (``schema`` where litellm's table says the model has it, else
    ``object``). A provider that refuses one is asked again with the next, once per run session."""
    parallel: int = Field(4, ge=1, le=32)
    """Most coder (and reviewer) calls of a generation under way at once."""
    prices: dict[str, Price] = {}
    """Prices by model name, for models litellm cannot price (else they count as $0, with a warning)."""

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: Optional[str]) -> Optional[str]:
        return Endpoint._env_name(v)

    def chain(self, role: str) -> list[Endpoint]:
        """The role's model, then the fallbacks, each with its endpoint filled in."""
        first = getattr(self, role) or self.model
        if first is None:
            return []
        return [self._endpoint(ref) for ref in [first, *self.fallbacks]]

    def _endpoint(self, ep: Endpoint) -> Endpoint:
        return ep.model_copy(update={"api_base": ep.api_base or self.api_base,
                                     "api_key_env": ep.api_key_env or self.api_key_env})

    def models(self) -> list[Endpoint]:
        """Every distinct model configured (doctor checks each)."""
        seen: dict[str, Endpoint] = {}
        for role in ("architect", "coder", "reviewer"):
            for ep in self.chain(role):
                seen.setdefault(ep.model, ep)
        return list(seen.values())


class Search(_Strict):
    """How the loop searches: how candidates follow each other, which commits they are built
    on, and the offline sampler."""

    mode: Literal["generations", "async"] = "generations"
    """``generations``: propose K, train them (each scored as its training ends), decide, then
    the next K (reproducible for a seed). ``async``: a candidate is proposed each time a slot
    frees, against the champion and archive as they are then, and decided on its own the moment
    its score comes: every candidate is a generation of one, ``budget.generations x
    budget.candidates`` of them in all (docs/search.md, "The asynchronous mode"). Reproducible
    for a seed with one slot only: with more, what the architect knows when it proposes depends
    on which training ended first."""

    parents: Literal["champion", "archive"] = "champion"
    """``champion``: every candidate is built on the champion (a hill-climb). ``archive``: each
    candidate's parent is drawn from the whole lineage, scored by its value with a bonus for few
    children (``agents.architect.parents``); the champion is still the best approved commit."""
    sampler: Literal["tpe", "cmaes"] = "tpe"
    """The offline search's Optuna sampler: ``tpe`` (multivariate TPE from the baseline on) or
    ``cmaes`` (CMA-ES started at the baseline's values; needs the ``cmaes`` package)."""
    local: float = Field(0.0, ge=0, le=1)
    """Share of the offline search's proposals that tune their parent's values locally (a small
    step from the parent's values) instead of asking the sampler for values anywhere."""
    earlier_runs: bool = True
    """Show the architect the lessons and results of earlier runs on this repository (from the
    git notes); the offline search reads them as context only, so each run's seed stands alone."""


class SandboxConfig(_Strict):
    backend: Literal["auto", "process", "docker"] = "auto"
    """Where candidates run: docker when a daemon answers, else process."""
    image: Optional[str] = None
    """Docker image for this task (default: built by ``progenitor sandbox build``)."""


class TaskSpec(_Strict):
    name: str
    """Short name of the task."""
    objective: Objective
    data: Data
    train: Train
    scorer: Scorer
    protected: list[str] = []
    """Paths (globs) a candidate may not change; progenitor.yaml is always protected."""
    search_space: Optional[SearchSpace] = None
    guards: list[Guard] = []
    budget: Budget = Budget()
    oversight: Oversight = Oversight()
    safety: Safety = Safety()
    agents: Agents = Agents()
    """Which registered implementation plays each agent role."""
    llm: Optional[Llm] = None
    """The language models of the LLM agents; without it everything runs offline."""
    sandbox: SandboxConfig = SandboxConfig()
    search: Search = Search()
    """How candidates are found: generations or an asynchronous pool, their parents, the
    offline sampler."""
    seed: int = 0
    """Seed of the search architect (and of the causality probe's windows)."""
    evaluate: Literal["predictions", "model"] = "predictions"
    """``predictions``: training writes predictions that the trusted scorer reads. ``model``: training
    writes weights (safetensors), the scoring sandbox runs the candidate's ``predict`` on the holdout
    inputs, and the scorer reads the checked outputs (``{outputs}``), never the candidate's files."""
    predict: Annotated[Optional[ModelEval], BeforeValidator(_entry_ref)] = None
    """With ``evaluate: model``: the entry point (``predict: model.py:predict``) or a mapping with it."""

    @model_validator(mode="after")
    def _evaluation(self) -> "TaskSpec":
        problem = _evaluation_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _test_split(self) -> "TaskSpec":
        if self.data.test is not None and self.scorer.test is None:
            raise ValueError("'data.test' declares a test split but 'scorer.test' does not say how to score it; "
                             "add scorer.test (its command), or remove data.test")
        if self.scorer.test is not None and self.data.test is None:
            raise ValueError("'scorer.test' scores a test split that 'data.test' does not declare; add data.test "
                             "(its inputs and labels), or remove scorer.test")
        test = self.data.test
        if test is not None:
            shown = [p for p in self.data.visible if fnmatch.fnmatch(test.labels, p)]
            if shown:
                raise ValueError(f"'data.visible' pattern {shown[0]!r} matches the test labels {test.labels!r} "
                                 "('data.test.labels'), which candidates must never see; narrow the pattern")
            inputs_shown = any(fnmatch.fnmatch(test.inputs, pattern) for pattern in self.data.visible)
            if self.evaluate == "predictions" and not inputs_shown:
                raise ValueError(f"'data.visible' does not show the test inputs {test.inputs!r} ('data.test.inputs'), "
                                 f"which candidates predict on; add {test.inputs!r} to data.visible")
        return self

    @model_validator(mode="after")
    def _repeats(self) -> "TaskSpec":
        if self.objective.repeats > 1 and "seed" not in placeholders_in(self.train.command):
            raise ValueError(f"objective.repeats is {self.objective.repeats}, but train.command has no {{seed}}: "
                             "every repeat would train the same; pass {seed} to your training")
        return self

    @property
    def per_generation(self) -> int:
        """Candidates a generation proposes: ``budget.candidates``, or one in the asynchronous mode."""
        return 1 if self.search.mode == "async" else self.budget.candidates

    @property
    def stall_generations(self) -> int:
        """Generations in a row with no candidate trained that end the run: ``budget.stall_after``,
        or in the asynchronous mode that many budget generations' worth of candidates."""
        return self.budget.stall_after * self.budget.candidates if self.search.mode == "async" else self.budget.stall_after

    @property
    def generations_total(self) -> int:
        """Generations the budget allows: ``budget.generations``, or in the asynchronous mode (a
        generation of one per candidate) ``budget.generations x budget.candidates``."""
        if self.search.mode == "async":
            return self.budget.generations * self.budget.candidates
        return self.budget.generations

    @property
    def protected_paths(self) -> list[str]:
        """Declared protected paths plus the files progenitor always protects."""
        always = [SPEC_FILE]
        if self.safety.constitution:
            always.append(self.safety.constitution)
        if self.agents.brief:
            always.append(self.agents.brief)
        if self.oversight.allowed_signers:
            always.append(self.oversight.allowed_signers)
        return list(dict.fromkeys([*always, *self.protected]))


def _scorer_commands(spec: TaskSpec) -> dict[str, str]:
    commands = {"scorer.command": spec.scorer.command}
    if spec.scorer.test is not None:
        commands["scorer.test.command"] = spec.scorer.test.command
    return commands


def _evaluation_problem(spec: TaskSpec) -> Optional[str]:
    """Why ``evaluate`` and ``predict`` do not fit the rest of the spec (None: they do)."""

    commands = _scorer_commands(spec)
    if spec.evaluate == "predictions":
        if spec.predict is not None:
            return "'predict' is read only with 'evaluate: model'; add it, or remove 'predict'"
        used = [field for field, command in commands.items() if "outputs" in placeholders_in(command)]
        return (f"{used[0]} uses {{outputs}}, which only 'evaluate: model' fills in; read the candidate's "
                "predictions from {out}") if used else None
    if spec.predict is None:
        return ("'evaluate: model' needs the candidate's predict entry point, like 'predict: model.py:predict' "
                "(the function the scoring sandbox calls on the holdout inputs)")
    for field, command in commands.items():
        if "out" in placeholders_in(command):
            return (f"{field} names {{out}}, but with 'evaluate: model' no trusted command may open the "
                    "candidate's outputs (its files could be code or a pickle): score {outputs}, the checked "
                    "arrays its predict function returned")
    hidden = [spec.predict.inputs] + ([spec.data.test.inputs] if spec.data.test else [])
    if spec.predict.sequence is None:
        labels = {m.group(1) for c in commands.values() for m in re.finditer(r"\{data\}/([^\s'\";|&)]+)", c)}
        labels |= {spec.data.test.labels} if spec.data.test else set()
        fed = [name for name in hidden if name in labels]
        if fed:
            return (f"the scoring sandbox would be fed {fed[0]}, which a scorer command reads as labels: labels "
                    "never enter a sandbox; feed the inputs (predict.inputs, data.test.inputs)")
    if spec.predict.sequence is not None:
        shown = [name for name in hidden if any(fnmatch.fnmatch(name, p) for p in spec.data.visible)]
        if shown:
            return (f"data.visible would show {shown[0]} to candidates, but a token stream is its own label: "
                    "the scoring sandbox feeds it, from the trusted side")
    return None


def parse_spec(data: Any, source: str = SPEC_FILE) -> TaskSpec:
    return validate_file(TaskSpec, data, source, SpecError)


def load_spec(path: Union[str, Path]) -> TaskSpec:
    """Read and validate a ``progenitor.yaml`` (a file, or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / SPEC_FILE
    if not path.exists():
        raise SpecError(f"{path}: not found; run 'progenitor init {path.parent}' to write a template")
    return load_spec_text(path.read_text(encoding="utf-8"), str(path))


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: plain YAML keeps the last
    one silently, so a second ``oversight:`` line would undo the first without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<': merged keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice (first at line {seen[key] + 1}); YAML would "
                        "keep only the last: merge them into one", key_node.start_mark)
                seen[key] = key_node.start_mark.line
            except TypeError:  # an unhashable key: the base loader says so
                break
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str, error: type = SpecError) -> Any:
    """Parse YAML; a syntax error, or a key given twice, is one ``error`` naming ``source``
    and the line."""
    try:
        return yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def load_spec_text(text: str, source: str = SPEC_FILE) -> TaskSpec:
    return parse_spec(load_yaml(text, source), source)
