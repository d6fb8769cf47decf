"""onnx-int8-checked: int8 scores, fp32 wherever a label is in doubt; what `auto` chooses."""

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from tagger import modes
from tagger.checked_int8 import MARGINS_FILE, SENTENCES
from tagger.hub import ModelFolderError
from tagger.onnx_runtime import FP32, cached_path, weights_digest
from tagger.predictor import Tagger

WORDS = "troops withdrew from the city after shelling a depot while buses took children west of Kherson".split()


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(3, 14))) + "." for _ in range(count)]


def test_training_measures_the_margins_on_the_models_own_sentences(smoke_model):
    stored = json.loads((smoke_model / MARGINS_FILE).read_text())
    assert stored["weights"] == weights_digest(smoke_model) and len(stored["margins"]) == 4
    info = json.loads((smoke_model / "run_info.json").read_text())
    validation = info["split_sizes"]["validation"]
    assert stored["sentences"] == min(SENTENCES, validation + info["split_sizes"]["train"])
    assert stored["measured_on"].startswith(f"{validation} validation")
    assert all(margin > 0 for margin in stored["margins"])


@pytest.mark.parametrize("mode", ["onnx-int8-checked", "onnx-int8", "onnx-fp32", "fp32"])
def test_a_sentences_scores_do_not_depend_on_what_was_scored_before(smoke_model, tmp_path, mode):
    model = tmp_path / "model"
    shutil.copytree(smoke_model, model)
    before, after = sentences(SENTENCES + 100, seed=1), sentences(50, seed=2)
    alone = Tagger(model, mode=mode).scores(after)
    tagger = Tagger(model, mode=mode)
    tagger.scores(before)
    np.testing.assert_array_equal(tagger.scores(after), alone)
    assert sorted(p.name for p in model.iterdir()) == sorted(p.name for p in smoke_model.iterdir())  # nothing written


def test_without_margins_auto_scores_in_onnx_fp32_and_checked_int8_says_why(smoke_model, tmp_path, caplog,
                                                                          monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(smoke_model, model)
    (model / MARGINS_FILE).unlink()
    monkeypatch.setattr(modes, "has_gpu", lambda: False)
    monkeypatch.setattr(modes, "has_bf16_units", lambda: False)
    with caplog.at_level(logging.INFO, logger="tagger.predictor"):
        assert Tagger(model).mode == "onnx-fp32"
    assert f"no int8 margins in {model}" in caplog.text
    with pytest.raises(ModelFolderError, match=f"{MARGINS_FILE}: missing or measured on other weights"):
        Tagger(model, mode="onnx-int8-checked")


def test_margins_measured_on_other_weights_are_not_used(smoke_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(smoke_model, model)
    stored = json.loads((model / MARGINS_FILE).read_text())
    (model / MARGINS_FILE).write_text(json.dumps(stored | {"weights": "0" * 16}))
    with pytest.raises(ModelFolderError, match="measured on other weights"):
        Tagger(model, mode="onnx-int8-checked")


@pytest.mark.slow
def test_labels_match_fp32_on_a_real_encoder_rescoring_few_sentences(tmp_path):
    """MiniLM-L6 trained with the small recipe (60 steps from a linear probe's head): its logits
    spread out, so the check must keep fp32's labels while rescoring a minority (a tiny model's
    logits all lie near its thresholds, and so did MiniLM-L6's after 40 steps from a new head, and
    after 20 steps from the probe once the rarer labels' thresholds fell to 0.2-0.37)."""
    from train.model import packaged_encoder_path
    model = tmp_path / "minilm"
    result = subprocess.run([sys.executable, "-m", "train", "--config", "configs/smoke.yaml", "--model_name_or_path",
                             packaged_encoder_path(), "--recipe", "small",
                             "--output_dir", str(model)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    texts = [task["data"]["text"] for task in json.loads((REPO / "data/news_batch1_export.json").read_text())[:800]]
    checked = Tagger(model, mode="onnx-int8-checked")
    labels = checked.labels(checked.scores(texts))
    assert labels == Tagger(model, mode="fp32").labels(Tagger(model, mode="fp32").scores(texts))
    assert checked.checked.rescored < 0.3 * len(texts)
    assert any(labels)


def test_a_model_trained_again_into_its_folder_is_exported_again(smoke_model, tmp_path):
    from safetensors.torch import load_file, save_file
    model = tmp_path / "model"
    shutil.copytree(smoke_model, model)
    Tagger(model, mode="onnx-fp32")
    first = cached_path(model, FP32)
    weights = load_file(model / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 0.5
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    retrained = Tagger(model, mode="onnx-fp32")
    assert cached_path(model, FP32) != first and cached_path(model, FP32).is_file()
    np.testing.assert_allclose(retrained.scores(["A missile hit a depot."]),
                               Tagger(model, mode="fp32").scores(["A missile hit a depot."]), atol=1e-5)


@pytest.mark.parametrize("gpu, bf16, expected", [(True, False, "fp32"), (False, True, "bf16"),
                                                 (False, False, "onnx-int8-checked")])
def test_auto_chooses_by_what_the_machine_has(monkeypatch, gpu, bf16, expected):
    monkeypatch.setattr(modes, "has_gpu", lambda: gpu)
    monkeypatch.setattr(modes, "has_bf16_units", lambda: bf16)
    assert modes.auto_mode()[0] == expected


def test_auto_is_the_default_and_says_what_it_chose(smoke_model, caplog, monkeypatch):
    # A machine told to have bf16 units: the default must be bf16, whatever this machine has.
    monkeypatch.setattr(modes, "has_gpu", lambda: False)
    monkeypatch.setattr(modes, "has_bf16_units", lambda: True)
    with caplog.at_level(logging.INFO, logger="tagger.predictor"):
        tagger = Tagger(smoke_model)
    assert tagger.mode == "bf16"
    assert "Mode auto: bf16, for a CPU with bf16 units" in caplog.text


def test_the_onnx_modes_start_without_torch_or_transformers(smoke_model):
    Tagger(smoke_model, mode="onnx-int8-checked").tag("Exported before the check.")
    code = ("import sys; from tagger import Tagger; "
            f"print(Tagger({str(smoke_model)!r}, mode='onnx-int8-checked').tag('Troops withdrew.')['labels']); "
            "assert not {'torch', 'transformers', 'sklearn'} & set(sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
