"""The benchmark runs every system side by side, end to end."""

import json
import subprocess
import sys

import pytest

from conftest import REPO
from eval.bench import bench_sentences
from tagger.metrics import apply_thresholds, report
from tagger.predictor import Tagger


@pytest.mark.slow
def test_benchmark_compares_every_mode_with_the_pipeline(smoke_model, tmp_path):
    result = subprocess.run([sys.executable, "-m", "eval.bench", "--model", str(smoke_model), "--sentences", "64",
                             "--data", str(REPO / "data/seed_export.json"), "--passes", "3",
                             "--train-batch-sizes", "4", "8", "--end_to_end", "40", "--end_to_end_runs", "1",
                             "--output_dir", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    bench = json.loads((tmp_path / "bench.json").read_text())
    modes = {"pipeline", "fp32", "onnx-fp32", "onnx-int8-checked", "onnx-int8"}
    assert set(bench["systems"]) - {"bf16"} == modes  # bf16 where the CPU has bf16 units
    for name, system in bench["systems"].items():
        assert "error" not in system, f"{name}: {system['error']}"
        assert system["sentences_per_second"] > 0 and system["first_pass_sentences_per_second"] > 0
        assert system["sentences_per_second"] == sorted(system["passes_sentences_per_second"])[1]  # median of 3
    # Each system scored the same sentences, in its own mode, with the model's thresholds.
    expected = macro_f1_by_mode(smoke_model, ("fp32", "onnx-int8"))
    assert bench["systems"]["fp32"]["macro_f1"] == pytest.approx(expected["fp32"])
    assert bench["systems"]["onnx-int8"]["macro_f1"] == pytest.approx(expected["onnx-int8"])
    # fp32's scores to float rounding: this tiny model's scores lie near its thresholds, where
    # rounding may flip a label (a sentence moves macro-F1 by about 0.002 here).
    for name in ("pipeline", "onnx-fp32", "onnx-int8-checked"):
        assert bench["systems"][name]["macro_f1"] == pytest.approx(expected["fp32"], abs=0.005), name
    assert bench["matmul_flops"]["fp32"] > 1e9
    work = bench["flops_per_sentence"]
    assert 0 < work["predictor"] < work["model"] and work["tokens"] > 1
    fp32_runs = [run for run in bench["training"] if run["mixed_precision"] == "no"]
    assert [run["batch_size"] for run in fp32_runs] == [4, 8]
    assert all(run["samples_per_second"] > 0 for run in fp32_runs)
    assert "x pipeline" in result.stdout
    run = bench["end_to_end"]
    assert run["sentences"] == 40 and run["speedup"] > 0
    assert run["mode"] == Tagger(smoke_model).mode  # what `auto` chose, read from the log
    if run["mode"] != "bf16":
        assert run["labels_as_pipeline"] == 1.0  # fp32's labels, also where int8 is checked


def macro_f1_by_mode(model, modes) -> dict:
    """The macro-F1 on the bench's 64 sentences of the seed export, scored here."""
    tagger = Tagger(model, mode="fp32")
    texts, gold = bench_sentences([REPO / "data/seed_export.json"], 64, tagger.schema)
    return {mode: report(gold, apply_thresholds(Tagger(model, mode=mode).scores(texts), tagger.thresholds),
                         tagger.schema.labels)["macro"]["f1"] for mode in modes}
