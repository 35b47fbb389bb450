"""Requests, tokens and dollars per candidate of a scripted LLM run on the digits example, with
the code at another git ref (the baseline: ``--before``) and with this tree, in the same run.

Both versions meet the same scripted world, an OpenAI-compatible server on 127.0.0.1
(``tests/helpers/independent_llm.py``) that answers by what a request says, not by its order:

- generation 1's architect first answers JSON that fails the schema (a plan missing), then,
  once told why, a valid proposal; later generations' answers are valid;
- coder g1/c1's first request hangs past ``llm.timeout`` (a provider bills it), then answers;
- reviewer g1/c0 is rate limited once (429, ``Retry-After: 1``);
- coder g2/c1's prompt is "too long": a 400 ``context_length_exceeded``, every time;
- every other request gets a valid edit of ``config.yaml`` or an empty review.

The server bills like a provider (a completed request at its usage, an aborted one at its prompt
plus ``max_tokens``). Each version runs ``progenitor run`` in a subprocess (``PYTHONPATH`` = its
tree), on the digits example as that tree ships it (made by its own ``init``), with the local
executor and the process sandbox, for 2 generations of 2 candidates. Printed
per candidate proposed: the requests the agents sent, the tokens and dollars the server billed, the
dollars the run's ledger recorded, and the after/before ratios.

    python bench/llm_cost.py [--before REF] [--generations 2] [--candidates 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.independent_llm import IndependentLLM, Seen, Step, error, hang, reply  # noqa: E402

KEY = "BENCH_LLM_KEY"
PRICES = {"arch": (3.0, 15.0), "coder": (3.0, 15.0), "rev": (0.15, 0.6)}
"""Dollars per million tokens (a strong model for the architect and coder, a small one for review)."""
CHANGES = {(1, 0): ("hidden", "64"), (1, 1): ("epochs", "30"), (2, 0): ("activation", "gelu"), (2, 1): ("lr", "0.006")}
DEFAULT_BEFORE = "6eb8c14"
"""main before the one-budget-per-call work (issue 19)."""


class World:
    """The scripted answers, by what each request says; counts first requests per candidate."""

    def __init__(self) -> None:
        self.seen_keys: dict[tuple[str, str], int] = {}

    def _first(self, model: str, key: str) -> bool:
        n = self.seen_keys.get((model, key), 0)
        self.seen_keys[(model, key)] = n + 1
        return n == 0

    def architect(self, seen: Seen) -> Step:
        if "Reply with the word OK" in seen.text:
            return reply("OK")
        gen = int(re.search(r"for generation (\d+),", seen.text).group(1))
        drafts = [{"hypothesis": f"changing {name} to {value} helps", "plan": f"config.yaml: set {name} to {value}",
                   "expected_effect": "higher accuracy", "risk": "a slower training", "params": {}}
                  for (g, _), (name, value) in CHANGES.items() if g == gen]
        if gen == 1 and "could not be used" not in seen.text:
            drafts = [{"hypothesis": d["hypothesis"]} for d in drafts]  # no plan: fails the schema
        return reply(json.dumps({"proposals": drafts}))

    def coder(self, seen: Seen) -> Step:
        if "Reply with the word OK" in seen.text:
            return reply("OK")
        found = re.search(r"# The proposal \(g(\d+)/c(\d+)\)", seen.text)
        gen, k = int(found.group(1)), int(found.group(2))
        first = self._first("coder", f"{gen}/{k}")
        if (gen, k) == (1, 1) and first:
            return hang()
        if (gen, k) == (2, 1):
            return error(400, "This model's maximum context length is 8192 tokens. However, your messages resulted "
                              "in 9120 tokens. Please reduce the length of the messages.", code="context_length_exceeded")
        name, value = CHANGES[(gen, k)]
        line = re.search(rf"^{name}:.*$", seen.text, re.MULTILINE).group(0)
        new = re.sub(rf"^{name}:\s*\S+", f"{name}: {value}", line)
        return reply(f"config.yaml\n<<<<<<< SEARCH\n{line}\n=======\n{new}\n>>>>>>> REPLACE\n")

    def reviewer(self, seen: Seen) -> Step:
        if "Reply with the word OK" in seen.text:
            return reply("OK")
        if "# The candidate g1/c0" in seen.text and self._first("rev", "1/0"):
            return error(429, "Rate limit reached for requests", retry_after=1)
        return reply(json.dumps({"findings": []}))


def _spec(url: str) -> str:
    prices = ", ".join(f"openai/{m}: {{input: {i}, output: {o}}}" for m, (i, o) in PRICES.items())
    return ("agents: {architect: llm, coder: llm, reviewers: [llm], brief: program.md}\n"
            "llm:\n  architect: openai/arch\n  coder: openai/coder\n  reviewer: openai/rev\n"
            f"  api_base: {url}\n  api_key_env: {KEY}\n  timeout: 3\n  retries: 2\n  repairs: 2\n"
            f"  edit_attempts: 3\n  max_tokens: 1024\n  prices: {{{prices}}}\n")


def _tree(ref: str, scratch: Path) -> Path:
    if ref == "HEAD-WORKTREE":
        return ROOT
    tree = scratch / f"tree-{ref}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), ref], check=True)
    return tree


def _example(tree: Path, repo: Path) -> Path:
    """The digits example as that tree ships it (made by its own ``init``: the example's contract
    moved with the code, e.g. ``evaluate: model``, which older code cannot run)."""
    subprocess.run([sys.executable, "-m", "progenitor.cli", "init", "--example", "digits", str(repo)],
                   env={**os.environ, "PYTHONPATH": str(tree)}, check=True, capture_output=True, cwd=repo.parent)
    return repo


def _run(tree: Path, scratch: Path, label: str, generations: int, candidates: int) -> dict:
    world = World()
    with IndependentLLM(prices=PRICES) as server:
        server.otherwise("arch", world.architect)
        server.otherwise("coder", world.coder)
        server.otherwise("rev", world.reviewer)
        repo = _example(tree, scratch / f"digits-{label}")
        spec = repo / "progenitor.yaml"
        # Timeouts of a shared machine (what is measured is requests and dollars, not seconds).
        text = spec.read_text().replace("agents: {brief: program.md}\n", _spec(server.url))
        spec.write_text(re.sub(r"^(\s+timeout:) 120\b", r"\1 900", text, flags=re.MULTILINE))
        subprocess.run(["git", "-C", str(repo), "commit", "-qam", "LLM agents"], check=True,
                       env={**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@b",
                            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@b"})
        env = {**os.environ, "PYTHONPATH": str(tree), KEY: "sk-bench-0000", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "PROGENITOR_HOME": str(scratch / f"home-{label}")}
        done = subprocess.run([sys.executable, "-m", "progenitor.cli", "run", str(repo), "--executor", "local",
                               "--sandbox", "process", "-g", str(generations), "-k", str(candidates), "-q"],
                              env=env, capture_output=True, text=True, timeout=1800, cwd=scratch)
        imported = subprocess.run([sys.executable, "-c", "import progenitor; print(progenitor.__file__)"], env=env,
                                  capture_output=True, text=True, cwd=scratch).stdout.strip()
        if not imported.startswith(str(tree)):
            sys.exit(f"{label}: progenitor was imported from {imported}, not from {tree}")
        if done.returncode not in (0, 3):
            sys.exit(f"{label}: the run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        (run_id,) = [p.name for p in (repo / ".progenitor" / "runs").iterdir()]
        ledger = json.loads((repo / ".progenitor" / "runs" / run_id / "ledger.json").read_text())
        agents = [s for s in server.seen if s.body.get("max_tokens") != 1]
        tokens = sum(server.prompt_tokens(s.body["messages"]) for s in agents)
        by_role = {m: sum(1 for s in agents if s.model == m) for m in PRICES}
        return {"requests": len(agents), "by_role": by_role, "probes": len(server.seen) - len(agents),
                "prompt_tokens": tokens,
                "billed": server.billed, "ledger": sum(c["dollars"] for c in ledger["llm"].values()),
                "candidates": generations * candidates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=DEFAULT_BEFORE, help="git ref of the baseline code")
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=2)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="progenitor-bench-llm-"))
    before_tree = _tree(args.before, scratch)
    try:
        results = {label: _run(tree, scratch, label, args.generations, args.candidates)
                   for label, tree in (("before", before_tree), ("after", ROOT))}
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_tree)], check=False)
    rows = [("requests per candidate", "requests", "{:.2f}"),
            ("prompt tokens per candidate (sent)", "prompt_tokens", "{:.0f}"),
            ("dollars per candidate (server's bill)", "billed", "${:.5f}"),
            ("dollars per candidate (run's ledger)", "ledger", "${:.5f}")]
    print(f"scripted digits run, {args.generations} generations x {args.candidates} candidates; "
          f"before = {args.before}, after = this tree")
    print(f"{'':40s} {'before':>12s} {'after':>12s} {'after/before':>13s}")
    for name, key, fmt in rows:
        b, a = (results[v][key] / results[v]["candidates"] for v in ("before", "after"))
        print(f"{name:40s} {fmt.format(b):>12s} {fmt.format(a):>12s} {a / b if b else float('nan'):>12.2f}x")
    for v in ("before", "after"):
        r = results[v]
        print(f"{v}: ledger / server's bill = {r['ledger'] / r['billed']:.4f}; requests by model {r['by_role']}; "
              f"one-token preflight requests: {r['probes']}")


if __name__ == "__main__":
    main()
