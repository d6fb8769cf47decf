"""Runs that are killed, repeated or fed pickles: nothing lost, nothing different, nothing unsafe."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import REPO, annotation, task
from tagger import artifacts
from tagger.cli import UserError
from tagger.predictor import ModelFolderError, Tagger
from train.config import load_config
from train.run import run, splits_as_trained
from train.splits import fingerprint

# Script code for a subprocess that trains like `python -m train`, with callbacks added.
WITH_CALLBACKS = """
import os, signal, sys
import train.run
from train.config import load_config
from transformers import TrainerCallback

def add_callback(callback):
    build = train.run.build_trainer
    def build_with_callback(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(callback)
        return trainer
    train.run.build_trainer = build_with_callback
"""
TRAIN = "train.run.run(load_config(sys.argv[1:]))"

# SIGKILLs the run right after the first checkpoint is saved.
KILL_AFTER_FIRST_CHECKPOINT = """
class Kill(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

add_callback(Kill())
"""
KILLED_AFTER_FIRST_CHECKPOINT = WITH_CALLBACKS + KILL_AFTER_FIRST_CHECKPOINT + TRAIN


def smoke(output_dir, *options):
    return ["--config", str(REPO / "configs/smoke.yaml"), "--output_dir", str(output_dir), *options]


def metrics(model_dir):
    return json.loads((model_dir / "metrics.json").read_text())


def test_a_killed_run_resumes_to_the_same_model_and_metrics(tmp_path):
    uninterrupted = run(load_config(smoke(tmp_path / "whole")))
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_FIRST_CHECKPOINT, *smoke(tmp_path / "resumed")],
                            cwd=REPO, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    staging = artifacts.staging_dir(tmp_path / "resumed")
    assert not (tmp_path / "resumed").exists()
    [checkpoint] = (staging / "checkpoints").glob("checkpoint-*")
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert "EarlyStoppingCallback" in state["stateful_callbacks"]  # patience survives the kill

    with pytest.raises(UserError, match="holds an interrupted run: pass --resume true"):
        run(load_config(smoke(tmp_path / "resumed")))
    resumed = run(load_config(smoke(tmp_path / "resumed", "--resume", "true")))
    for split in ("validation", "test"):
        for label, scores in metrics(uninterrupted)[split]["per_class"].items():
            assert metrics(resumed)[split]["per_class"][label] == pytest.approx(scores, abs=1e-6)
    assert not staging.exists()


# With the dataloader a GPU gets (worker processes; pinning needs a GPU), writing every step's
# training loss to the file named by $LOSSES.
GPU_DATALOADER = WITH_CALLBACKS + """
import dataclasses
import train.trainer

options = train.trainer.dataloader_options(on_gpu=True) | {"dataloader_pin_memory": False}
arguments = train.trainer.training_arguments
train.trainer.training_arguments = lambda config, work: dataclasses.replace(
    arguments(config, work), logging_steps=1, **options)

class Losses(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in logs:
            with open(os.environ["LOSSES"], "a") as f:
                f.write(f"{state.global_step} {logs['loss']}\\n")

add_callback(Losses())
"""


@pytest.mark.slow
def test_a_resumed_run_with_the_gpu_dataloader_trains_on_the_same_batches(tmp_path):
    def train(name, script, *options, returncode=0):
        result = subprocess.run([sys.executable, "-c", GPU_DATALOADER + script, *smoke(tmp_path / name, *options)],
                                cwd=REPO, capture_output=True, text=True,
                                env={**os.environ, "LOSSES": str(tmp_path / f"{name}.losses")})
        assert result.returncode == returncode, result.stderr[-2000:]
    train("whole", TRAIN)
    train("resumed", KILL_AFTER_FIRST_CHECKPOINT + TRAIN, returncode=-signal.SIGKILL)
    train("resumed", TRAIN, "--resume", "true")
    whole, resumed = ((tmp_path / f"{name}.losses").read_text().splitlines() for name in ("whole", "resumed"))
    assert len(whole) > 3 and resumed == whole  # every step's loss, the epochs after the kill too


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no checkpoint to resume from"):
        run(load_config(smoke(tmp_path / "m", "--resume", "true")))


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
    assert "10000 empty lines skipped, 1 sentences truncated to 512 tokens" in result.stderr


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
