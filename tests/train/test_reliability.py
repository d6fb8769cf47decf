"""Runs that are killed, repeated or fed pickles: nothing lost, nothing different, nothing unsafe."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import REPO, annotation, task
from tagger.cli import UserError
from tagger.predictor import ModelFolderError, Tagger
from train import checkpoints, output
from train.config import load_config
from train.run import run, splits_as_trained
from train.splits import fingerprint

def smoke(output_dir, *options):
    return ["--config", str(REPO / "configs/smoke.yaml"), "--output_dir", str(output_dir), *options]


def metrics(model_dir):
    """The scores of a model folder's metrics.json (its "model" key names the folder)."""
    return json.loads((model_dir / "metrics.json").read_text())["splits"]


FAULTS = REPO / "tests" / "faults"  # its sitecustomize.py kills a process at a named call


def train_cli(output_dir, *options, kill_at=None, call=1, max_file_size=None, **faults):
    """`python -m train` on the smoke config, with the fault injection of tests/faults/: killed by
    SIGKILL at the `call`-th call of `kill_at` (module:function) if given, files limited to
    max_file_size bytes if given, and any other switch of tests/faults/sitecustomize.py."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")])),
           **faults}
    if kill_at:
        env.update(KILL_AT=kill_at, KILL_AT_CALL=str(call))

    def limit_file_size():  # a write past the limit fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_size, max_file_size))
    return subprocess.run([sys.executable, "-m", "train", *smoke(output_dir, *options)], cwd=REPO, env=env,
                          capture_output=True, text=True, preexec_fn=limit_file_size if max_file_size else None)


def outcome(model_dir):
    return metrics(model_dir), json.loads((model_dir / "thresholds.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("uninterrupted") / "model"
    result = train_cli(model_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    return outcome(model_dir)


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    """A finished model of another seed: what an interrupted run must not damage."""
    model_dir = tmp_path_factory.mktemp("other") / "model"
    assert train_cli(model_dir, "--seed", "7").returncode == 0
    return model_dir


# The smoke run saves a checkpoint after each of its 3 epochs, keeps 2, reloads the best one,
# tunes thresholds, writes the model folder in staging and publishes it (3 renames).
KILL_POINTS = {
    "first checkpoint, weights only": ("transformers.trainer:Trainer._save_optimizer_and_scheduler", 1),
    "second checkpoint, no RNG or trainer state": ("transformers.trainer:Trainer._save_rng_state", 2),
    "second checkpoint, all but trainer_state.json": ("transformers.trainer_callback:TrainerState.save_to_json", 2),
    "third checkpoint begins": ("transformers.trainer:Trainer._save_checkpoint", 3),
    "third checkpoint saved, older not yet rotated": ("transformers.trainer:rotate_checkpoints", 3),
    "reloading the best checkpoint": ("transformers.trainer:Trainer._load_best_model", 1),
    "tuning thresholds, scoring": ("train.run:tune_and_evaluate", 1),
    "model folder half-written": ("tagger.artifacts:write_json", 2),
    "publishing: model complete, not yet moved": ("os:rename", 2),
    "publishing: model moved, staging not removed": ("os:rename", 3),
}


def resumed_from(log: str) -> str:
    for line in log.splitlines():
        for phrase in ("Resuming from", "No complete checkpoint", "Nothing to resume", "Completing the interrupted"):
            if phrase in line:
                return line.split(": ", 1)[1]
    return "?"


@pytest.mark.slow
@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_run_killed_anywhere_resumes_to_the_same_result(tmp_path, uninterrupted, point):
    model_dir = tmp_path / "model"
    killed = train_cli(model_dir, kill_at=KILL_POINTS[point][0], call=KILL_POINTS[point][1])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = train_cli(model_dir, "--resume", "true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert outcome(model_dir) == uninterrupted
    assert not output.staging_dir(model_dir).exists()
    row = resumed_from(resumed.stderr).replace(f"{output.staging_dir(model_dir)}/", "NAME.partial/")
    print(f"\n| {point} | {row} | yes |")  # the matrix in docs/reliability.md


@pytest.mark.slow
@pytest.mark.parametrize("point", ["second checkpoint, no RNG or trainer state", "tuning thresholds, scoring",
                                   "publishing: model complete, not yet moved"])
def test_a_killed_run_never_damages_the_model_it_replaces(tmp_path, uninterrupted, other_model, point):
    model_dir = tmp_path / "model"
    shutil.copytree(other_model, model_dir)
    killed = train_cli(model_dir, "--overwrite_output_dir", "true", kill_at=KILL_POINTS[point][0],
                       call=KILL_POINTS[point][1])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert outcome(model_dir) == outcome(other_model)  # untouched until the new one is complete
    resumed = train_cli(model_dir, "--overwrite_output_dir", "true", "--resume", "true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert outcome(model_dir) == uninterrupted


@pytest.mark.slow
def test_an_incomplete_checkpoint_is_never_loaded(tmp_path):
    """The reported failure: killed while the first checkpoint was written, the folder held only
    config.json; `--resume` must start over rather than load it."""
    model_dir = tmp_path / "model"
    first = train_cli(model_dir, kill_at="transformers.trainer:Trainer._save_optimizer_and_scheduler")
    assert first.returncode == -signal.SIGKILL
    [checkpoint] = (output.staging_dir(model_dir) / "checkpoints").glob("checkpoint-*")
    assert checkpoints.why_incomplete(checkpoint) == "no optimizer.pt"
    resumed = train_cli(model_dir, "--resume", "true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"No complete checkpoint in {checkpoint.parent} (skipped {checkpoint.name} (no optimizer.pt))" in resumed.stderr


@pytest.mark.slow
def test_truncated_or_unreadable_checkpoint_files_are_found(tmp_path, uninterrupted):
    model_dir = tmp_path / "model"
    assert train_cli(model_dir, kill_at="train.run:tune_and_evaluate").returncode == -signal.SIGKILL
    found = sorted((output.staging_dir(model_dir) / "checkpoints").glob("checkpoint-*"), key=checkpoints.step)
    assert [checkpoints.why_incomplete(c) for c in found] == [None] * len(found) and len(found) >= 2
    newest, older = found[-1], found[-2]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert checkpoints.why_incomplete(newest).startswith("model.safetensors unreadable")
    (newest / "trainer_state.json").write_text('{"global_step": ')
    assert checkpoints.why_incomplete(newest).startswith("trainer_state.json unreadable")
    optimizer = older / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:len(optimizer.read_bytes()) // 2])
    assert checkpoints.why_incomplete(older).startswith("optimizer.pt unreadable")


# The tiny model's weights take 4 MB (written by safetensors), its optimizer state 8 MB (torch.save).
@pytest.mark.slow
@pytest.mark.parametrize("max_file_size, reason", [(2_000_000, "File too large"),
                                                   (6_000_000, "torch.save could not write a file")])
def test_a_full_disk_is_one_line_and_resume_works_once_there_is_room(tmp_path, uninterrupted, other_model,
                                                                     max_file_size, reason):
    model_dir = tmp_path / "model"
    shutil.copytree(other_model, model_dir)
    full = train_cli(model_dir, "--overwrite_output_dir", "true", max_file_size=max_file_size)
    assert full.returncode == 1, full.stderr[-2000:]
    [error] = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: {output.staging_dir(model_dir)}: a write failed ({reason}"), error
    assert "Traceback" not in full.stderr
    assert outcome(model_dir) == outcome(other_model)
    resumed = train_cli(model_dir, "--overwrite_output_dir", "true", "--resume", "true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert outcome(model_dir) == uninterrupted


def test_a_second_run_on_the_same_output_dir_refuses_to_start(tmp_path):
    model_dir = tmp_path / "model"
    with output.exclusive(model_dir):  # a run in progress
        second = train_cli(model_dir)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1].startswith(f"error: {model_dir}: another run is writing it (pid {os.getpid()}")
    assert not output.staging_dir(model_dir).exists() and not model_dir.exists()


@pytest.mark.slow
def test_an_interrupted_run_asks_for_resume_or_overwrite(tmp_path):
    model_dir = tmp_path / "model"
    assert train_cli(model_dir, kill_at="train.run:tune_and_evaluate").returncode == -signal.SIGKILL
    with pytest.raises(UserError, match="holds an interrupted run: pass --resume true"):
        run(load_config(smoke(model_dir)))


@pytest.mark.slow
def test_a_resumed_run_with_the_gpu_dataloader_trains_on_the_same_batches(tmp_path):
    """With the dataloader a GPU gets (worker processes), a run killed after its first checkpoint
    and resumed logs the same loss at every step as an uninterrupted one."""
    def train(name, *options, **faults):
        return train_cli(tmp_path / name, "--logging_steps", "1", "--dataloader_num_workers", "4", *options,
                         LOSSES=str(tmp_path / f"{name}.losses"), **faults)
    assert train("whole").returncode == 0
    assert train("resumed", kill_at="transformers.trainer:rotate_checkpoints").returncode == -signal.SIGKILL
    assert train("resumed", "--resume", "true").returncode == 0
    whole, resumed = ((tmp_path / f"{name}.losses").read_text().splitlines() for name in ("whole", "resumed"))
    assert len(whole) > 3 and resumed == whole  # every step's loss, the epochs after the kill too


def test_resume_with_nothing_to_resume_starts_from_the_beginning_and_says_so(tmp_path, smoke_model, caplog):
    with caplog.at_level("WARNING"):
        resumed = run(load_config(smoke(tmp_path / "m", "--resume", "true")))
    assert f"Nothing to resume in {output.staging_dir(tmp_path / 'm')}" in caplog.text
    assert metrics(resumed) == metrics(smoke_model)


def test_two_runs_with_the_same_seed_give_identical_metrics(tmp_path, smoke_model):
    again = run(load_config(smoke(tmp_path / "again")))
    assert metrics(again) == metrics(smoke_model)
    assert json.loads((again / "thresholds.json").read_text()) == json.loads((smoke_model / "thresholds.json").read_text())


def test_the_seed_changes_the_training_but_not_the_split(tmp_path, write_export):
    kinds = [("strike",), ("withdrawal",), ("evacuation",), ("atrocity_claim",), ()]
    export = write_export([task(5 * a + i, f"article {a} sentence {i}", annotation(*kinds[(a + i) % 5]),
                                article=f"art-{a}") for a in range(40) for i in range(5)])
    base = run(load_config(smoke(tmp_path / "base", "--data_files", str(export))))
    other_seed = run(load_config(smoke(tmp_path / "seed", "--data_files", str(export), "--seed", "7")))
    other_split = run(load_config(smoke(tmp_path / "split", "--data_files", str(export), "--split_seed", "7")))
    split_of = {name: json.loads((model / "run_info.json").read_text())["data_fingerprint"]
                for name, model in (("base", base), ("seed", other_seed), ("split", other_split))}
    assert split_of["base"] == split_of["seed"] != split_of["split"]
    assert (base / "model.safetensors").read_bytes() != (other_seed / "model.safetensors").read_bytes()
    assert fingerprint(splits_as_trained(other_split)[0]) == split_of["split"]
    # A model saved before split_seed existed was split with its seed.
    options = yaml.safe_load((other_seed / "train_config.yaml").read_text())
    del options["split_seed"]
    (other_seed / "train_config.yaml").write_text(yaml.safe_dump(options))
    assert fingerprint(splits_as_trained(other_seed)[0]) == split_of["split"]


def test_pickle_weights_are_refused(tmp_path, smoke_model):
    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "thresholds.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((smoke_model / name).read_bytes())
    torch.save({}, folder / "pytorch_model.bin")
    with pytest.raises(ModelFolderError, match="no model.safetensors"):
        Tagger(folder)


def predict(model_dir, input_path, output_path):
    return subprocess.run([sys.executable, "-m", "eval.predict", "--model", str(model_dir), "--input",
                           str(input_path), "--output", str(output_path)], cwd=REPO, capture_output=True, text=True)


def test_predict_survives_a_megabyte_line_and_ten_thousand_empty_lines(tmp_path, smoke_model):
    source = tmp_path / "odd.txt"
    source.write_text("Kyiv was shelled. " * 58_000 + "\n" + "\n" * 10_000 + "Troops withdrew.\n")
    result = predict(smoke_model, source, tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(rows) == 2
    assert "1 sentences were truncated to 512 tokens" in result.stderr and "(10000 empty lines skipped)" in result.stderr


@pytest.mark.parametrize("content, message", [
    (b"ok line\n\xff\xfe bad bytes\n", "not UTF-8"),
    (None, "input file not found"),
])
def test_predict_bad_input_is_one_line_and_leaves_no_output(tmp_path, smoke_model, content, message):
    source = tmp_path / "in.txt"
    if content is not None:
        source.write_bytes(content)
    result = predict(smoke_model, source, tmp_path / "out.jsonl")
    assert result.returncode == 1 and message in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out.jsonl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl")]  # no temporary left


def test_a_model_folder_with_other_labels_is_refused(tmp_path, smoke_model):
    folder = tmp_path / "other"
    shutil.copytree(smoke_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b", "2": "c", "3": "d"}
    config["label2id"] = {"a": 0, "b": 1, "c": 2, "d": 3}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match=r"config.json: labels \['a', 'b', 'c', 'd'\]"):
        Tagger(folder)
