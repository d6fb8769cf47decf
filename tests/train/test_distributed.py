"""Two CPU processes (gloo) train the smoke config into the same kind of model as one."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from transformers import pipeline

from conftest import LABELS, REPO


def test_two_cpu_processes_give_a_complete_model(tmp_path, smoke_model):
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun if torchrun.exists() else shutil.which("torchrun")),
                             "--nproc_per_node", "2", "-m", "train", "--config", "configs/smoke.yaml",
                             "--output_dir", str(tmp_path / "ddp")], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})  # CPUs, also on a GPU machine
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((tmp_path / "ddp" / "run_info.json").read_text())
    assert info["processes"] == 2
    assert info["data_fingerprint"] == json.loads((smoke_model / "run_info.json").read_text())["data_fingerprint"]
    assert sorted(json.loads((tmp_path / "ddp" / "thresholds.json").read_text())) == sorted(LABELS)
    scores = pipeline("text-classification", model=str(tmp_path / "ddp"), top_k=None)(["Kyiv was shelled."])[0]
    assert sorted(d["label"] for d in scores) == sorted(LABELS)
