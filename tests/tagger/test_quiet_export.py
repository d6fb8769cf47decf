"""The first use of an ONNX mode builds the fast CPU model: the user sees one line before and one
after, and the exporter's details (torch's TracerWarnings, ONNX Runtime's fusion lines) go to a
log file beside the cache."""

import shutil
import subprocess
import sys

from conftest import REPO


def test_the_first_onnx_export_prints_one_line_and_logs_the_details_to_a_file(smoke_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(smoke_model, model)  # a fresh cache beside it
    (tmp_path / "in.txt").write_text("A missile hit a depot.\n")
    result = subprocess.run([sys.executable, "-m", "eval.predict", "--model", str(model), "--mode", "onnx-int8",
                             "--input", str(tmp_path / "in.txt"), "--output", str(tmp_path / "out.jsonl")],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Building the fast CPU model once" in result.stderr and "Built the fast CPU model in" in result.stderr
    assert "Fused" not in result.stderr and "TracerWarning" not in result.stderr, result.stderr
    details = (tmp_path / "model-outputs" / "onnx" / "export.log").read_text()
    assert "Fused" in details or "TracerWarning" in details, details[:2000]
