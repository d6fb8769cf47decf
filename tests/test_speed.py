"""The faster predictor modes agree with fp32, and the benchmark runs end to end."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from eval.predictor import Predictor

TEXTS = ["Russian troops withdrew from Kherson.", "A missile hit a depot.", "Buses left Mariupol with children.",
         "Investigators found mass graves near the town after the occupiers left in a hurry last spring."]


@pytest.mark.parametrize("mode, tolerance", [("bf16", 0.02), ("onnx-int8", 0.05)])
def test_fast_modes_score_like_fp32(smoke_model, mode, tolerance):
    reference = Predictor(smoke_model).scores(TEXTS)
    fast = Predictor(smoke_model, mode=mode).scores(TEXTS)
    assert fast.shape == reference.shape and np.abs(fast - reference).max() < tolerance


def test_scores_do_not_depend_on_batching(smoke_model):
    one_by_one = Predictor(smoke_model, batch_size=1).scores(TEXTS)
    np.testing.assert_allclose(Predictor(smoke_model, batch_size=3).scores(TEXTS), one_by_one, atol=1e-5)


@pytest.mark.slow
def test_benchmark_compares_every_mode_with_the_pipeline(smoke_model, tmp_path):
    result = subprocess.run([sys.executable, "-m", "eval.bench", "--model", str(smoke_model), "--sentences", "64",
                             "--data", str(REPO / "data/seed_export.json"), "--output", str(tmp_path / "b.json")],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    bench = json.loads((tmp_path / "b.json").read_text())
    assert set(bench["systems"]) == {"pipeline", "fp32", "bf16", "onnx-int8"}
    for system in bench["systems"].values():
        assert system["sentences_per_second"] > 0 and 0 <= system["macro_f1"] <= 1
    assert bench["matmul_flops"]["fp32"] > 1e9 and bench["flops_per_sentence"] > 0
    assert "x pipeline" in result.stdout
