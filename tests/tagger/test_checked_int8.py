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
from tagger.checked_int8 import CALIBRATION, CheckedInt8
from tagger.onnx_runtime import FP32, INT8, cached_path
from tagger.predictor import Tagger

WORDS = "troops withdrew from the city after shelling a depot while buses took children west of Kherson".split()


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(3, 14))) + "." for _ in range(count)]


def test_labels_match_fp32_and_doubtful_sentences_get_fp32_scores(smoke_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(smoke_model, model)  # a cache of its own: the margins are measured here
    texts = sentences(CALIBRATION + 400)
    exact = Tagger(model, mode="fp32")
    checked = Tagger(model, mode="onnx-int8-checked")
    scores = checked.scores(texts)
    reference = exact.scores(texts)
    assert checked.labels(scores) == exact.labels(reference)
    margins = json.loads(cached_path(model, INT8, ".margins.json").read_text())
    assert margins["sentences"] == CALIBRATION and len(margins["margins"]) == 4
    np.testing.assert_allclose(scores[:CALIBRATION], reference[:CALIBRATION], atol=1e-5)  # scored both ways
    # A later Tagger reads the margins instead of measuring them again. (This tiny model's logits
    # all lie near its thresholds, so it rescores most sentences; MiniLM-L6 rescores 3%.)
    again = Tagger(model, mode="onnx-int8-checked")
    np.testing.assert_allclose(again.checked.margins, margins["margins"])
    assert again.labels(again.scores(texts)) == exact.labels(reference)
    assert again.checked.scored == len(texts)


def test_only_sentences_near_a_threshold_are_scored_again(tmp_path):
    thresholds = {"a": 0.5, "b": 0.8}  # logits 0 and 1.386
    check = CheckedInt8(fp32=None, thresholds=thresholds, margins_path=tmp_path / "margins.json")
    check.margins = np.array([0.5, 0.5])
    logits = np.array([[3.0, -3.0], [0.2, -3.0], [3.0, 1.2], [-0.6, 2.0]], dtype=np.float32)
    asked = []
    result = check.check(logits.copy(), lambda rows: asked.append(list(rows)) or np.full((len(rows), 2), 9.0))
    assert asked == [[1, 2]]
    assert result[1].tolist() == result[2].tolist() == [9.0, 9.0] and result[0].tolist() == [3.0, -3.0]


def test_single_choice_rescores_when_two_labels_compete(tmp_path):
    check = CheckedInt8(fp32=None, thresholds={"a": 0.5, "b": 0.5}, margins_path=tmp_path / "margins.json",
                        single_choice=True)
    check.margins = np.array([0.5, 0.5])
    logits = np.array([[3.0, 2.9], [3.0, -3.0]])  # both over their thresholds: which is higher may swap
    assert check.unsure(logits).tolist() == [True, False]


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
