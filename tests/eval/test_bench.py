"""The benchmark runs every system side by side, end to end."""

import json
import subprocess
import sys

import pytest

from conftest import REPO


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
        assert 0 <= system["macro_f1"] <= 1
    assert bench["matmul_flops"]["fp32"] > 1e9
    work = bench["flops_per_sentence"]
    assert 0 < work["predictor"] < work["model"] and work["tokens"] > 1
    fp32_runs = [run for run in bench["training"] if run["mixed_precision"] == "no"]
    assert [run["batch_size"] for run in fp32_runs] == [4, 8]
    assert all(run["samples_per_second"] > 0 for run in fp32_runs)
    assert "x pipeline" in result.stdout
    run = bench["end_to_end"]
    assert run["sentences"] == 40 and run["speedup"] > 0 and 0.9 <= run["labels_as_pipeline"] <= 1
    assert run["mode"] in ("onnx-int8-checked", "bf16", "fp32")  # what `auto` chose, from the log
