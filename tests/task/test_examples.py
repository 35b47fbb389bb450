"""The bundled examples' specs: they load, and their search spaces name keys their configs have."""

from __future__ import annotations

from pathlib import Path

from progenitor.task.spec import load_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


def test_spec_loads():
    spec = load_spec(EXAMPLE)
    assert spec.objective.metric == "accuracy" and spec.objective.goal == "maximize"
    assert set(spec.search_space.params) == {
        "hidden", "depth", "activation", "dropout", "lr", "epochs", "batch_size", "weight_decay",
    }
    assert {"prepare.py", "score.py", "progenitor.yaml"} <= set(spec.protected_paths)
    assert "holdout_labels.npy" not in spec.data.visible and spec.data.test.labels not in spec.data.visible
    # Every searchable key exists in the baseline config the offline coder rewrites.
    import yaml

    config = yaml.safe_load((EXAMPLE / spec.search_space.file).read_text())
    assert set(spec.search_space.params) <= set(config)
