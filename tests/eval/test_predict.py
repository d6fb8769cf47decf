"""eval.predict on several processes: each scores its share, and the file is the one-process file."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def predict(*launcher, model, source, output):
    return subprocess.run([*launcher, "-m", "eval.predict", "--model", str(model), "--input", str(source),
                           "--output", str(output)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})  # CPU processes, also on a GPU machine


def test_two_processes_write_the_one_process_file_each_scoring_its_share(smoke_model, tmp_path):
    source = tmp_path / "in.txt"  # three chunks of up to 2,048 sentences
    source.write_text("".join(f"Troops withdrew from village {i}; a missile hit depot {i % 7}.\n" for i in range(5000)))
    one = predict(sys.executable, model=smoke_model, source=source, output=tmp_path / "one.jsonl")
    assert one.returncode == 0, one.stderr[-2000:]
    torchrun = Path(sys.executable).with_name("torchrun")
    two = predict(str(torchrun if torchrun.exists() else shutil.which("torchrun")), "--nproc_per_node", "2",
                  model=smoke_model, source=source, output=tmp_path / "two.jsonl")
    assert two.returncode == 0, two.stderr[-3000:]
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    shares = sorted(map(int, re.findall(r"Process \d of 2 scored (\d+) of 5000 sentences", two.stderr)))
    assert shares == [2048, 2952]  # chunks 0 and 2 to one process, chunk 1 to the other
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "one.jsonl", "two.jsonl"]  # no shard left
