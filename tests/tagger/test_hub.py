"""A model pushed to the Hub loads back by its id, from the Hugging Face cache as the Hub leaves
it (blobs, snapshots of symbolic links, refs/main), with HF_HUB_OFFLINE=1 since the Hub cannot be
reached here."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

REPO_ID = "someone/news-tagger"
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def hub_cache(smoke_model, tmp_path_factory):
    """The smoke model as `hf download someone/news-tagger` leaves it in HF_HUB_CACHE."""
    cache = tmp_path_factory.mktemp("hub")
    repo = cache / f"models--{REPO_ID.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    for path in sorted(p for p in smoke_model.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = repo / "snapshots" / REVISION / path.relative_to(smoke_model)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return cache


def offline(cache):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}


def cached_files(cache):
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))


def test_the_tagger_loads_a_hub_id_and_scores_as_the_folder_does(hub_cache, smoke_model):
    script = ("import json, sys; from tagger import Tagger; "
              "print(json.dumps(Tagger.from_pretrained(sys.argv[1], mode='fp32').scores(['Troops withdrew.']).tolist()))")
    by_id, by_folder = (subprocess.run([sys.executable, "-c", script, name], cwd=REPO, env=offline(hub_cache),
                                       capture_output=True, text=True) for name in (REPO_ID, str(smoke_model)))
    assert by_id.returncode == 0, by_id.stderr[-2000:]
    assert json.loads(by_id.stdout) == json.loads(by_folder.stdout)


def test_predict_takes_a_hub_id_and_writes_nothing_into_the_cache(hub_cache, tmp_path):
    before = cached_files(hub_cache)
    (tmp_path / "in.txt").write_text("A missile hit a depot.\nBuses took residents out.\n")
    result = subprocess.run([sys.executable, "-m", "eval.predict", "--model", REPO_ID, "--mode", "fp32", "--input",
                             str(tmp_path / "in.txt"), "--output", str(tmp_path / "out.jsonl")],
                            cwd=REPO, env=offline(hub_cache), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    assert cached_files(hub_cache) == before


def test_an_unknown_id_is_one_line(hub_cache, tmp_path):
    result = subprocess.run([sys.executable, "-m", "eval.predict", "--model", "someone/not-pushed", "--input",
                             str(tmp_path / "in.txt"), "--output", str(tmp_path / "out.jsonl")],
                            cwd=REPO, env=offline(hub_cache), capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "someone/not-pushed: no such model folder, nor a model on the Hugging Face Hub" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
