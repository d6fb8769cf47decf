import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from tagger.labels import DEFAULT
from tagger.metrics import sigmoid
from train.config import ConfigError, TrainConfig
from train.model import SCRATCH_TINY, load_base_model
from train.run import scored
from train.trainer import build_trainer, mixed_precision, positive_weights

FEW = [
    ("Russian troops withdrew from the northern villages.", ["withdrawal"]),
    ("A missile hit the fuel depot overnight.", ["strike"]),
    ("Buses took residents out of the besieged city.", ["evacuation"]),
    ("Investigators found bodies of executed civilians.", ["atrocity_claim"]),
    ("Shelling continued as the army retreated east.", ["withdrawal", "strike"]),
    ("Ministers met in Brussels to discuss sanctions.", []),
]


def test_a_few_examples_are_fitted_perfectly(tmp_path):
    torch.manual_seed(0)
    base = load_base_model(SCRATCH_TINY, allow_fallback=False, labels=DEFAULT.labels)
    rows = Dataset.from_dict({"text": [t for t, _ in FEW], "labels": [DEFAULT.multi_hot(l) for _, l in FEW]})
    rows = rows.map(lambda b: base.tokenizer(b["text"]), batched=True)
    splits = DatasetDict(train=rows, validation=rows, test=rows)
    # One evaluation, at the end: the model kept is the last one.
    config = TrainConfig(max_steps=150, learning_rate=1e-2, warmup_steps=0, per_device_train_batch_size=6,
                         eval_steps=150, logging_steps=50)
    trainer = build_trainer(config, base.model, base.tokenizer, splits, str(tmp_path))
    trainer.train()
    prediction = trainer.predict(rows)  # rows come back length-grouped, with their labels
    assert sorted(map(tuple, prediction.label_ids)) == sorted(map(tuple, rows["labels"]))
    assert ((sigmoid(prediction.predictions) >= 0.5) == prediction.label_ids.astype(bool)).all()


def test_positive_weights_are_negatives_over_positives_capped():
    labels = [[1, 0, 0, 0]] * 2 + [[0, 1, 0, 0]] * 8 + [[0, 0, 0, 0]] * 90
    assert positive_weights(labels, 10.0).tolist() == [10.0, 10.0, 10.0, 10.0]
    assert positive_weights(labels, 100.0).tolist() == [49.0, 11.5, 100.0, 100.0]
    assert positive_weights([[1, 0, 1, 1], [0, 1, 1, 0], [0, 0, 1, 0]], 10.0).tolist() == [2.0, 2.0, 1.0, 2.0]


def test_after_mixed_precision_training_the_run_scores_in_fp32(tmp_path):
    """Thresholds and reported metrics must fit the scores `eval` and `eval.predict` give (fp32)."""
    torch.manual_seed(0)
    base = load_base_model(SCRATCH_TINY, allow_fallback=False, labels=DEFAULT.labels)
    rows = Dataset.from_dict({"text": [t for t, _ in FEW], "labels": [DEFAULT.multi_hot(l) for _, l in FEW]})
    rows = rows.map(lambda b: base.tokenizer(b["text"]), batched=True)
    config = TrainConfig(max_steps=30, learning_rate=1e-2, warmup_steps=0, per_device_train_batch_size=6,
                         eval_steps=30, mixed_precision="bf16")
    trainer = build_trainer(config, base.model, base.tokenizer, DatasetDict(train=rows, validation=rows),
                            str(tmp_path))
    trainer.train()
    gold, scores = scored(trainer, rows)
    saved = type(trainer.model)(trainer.model.config)  # the trained weights, as a saved model loads them
    saved.load_state_dict(trainer.model.state_dict())
    with torch.inference_mode():  # each sentence alone, in fp32
        fp32 = sigmoid(torch.cat([saved.eval()(**base.tokenizer(text, return_tensors="pt")).logits
                                  for text in rows["text"]]).numpy())
    order = [rows["labels"].index(list(row)) for row in gold]  # every sentence has its own labels
    np.testing.assert_allclose(scores, fp32[order], atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU choices")
def test_mixed_precision_on_a_cpu():
    assert mixed_precision("auto") == "no"  # opt-in on CPUs: most lack bf16 units
    assert mixed_precision("bf16") == "bf16"
    with pytest.raises(ConfigError, match="'fp16' needs a GPU"):
        mixed_precision("fp16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_mixed_precision_on_a_gpu():
    assert mixed_precision("auto") == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert mixed_precision("fp16") == "fp16"


def smoke_config(tmp_path, *options):
    from conftest import REPO
    from train.config import load_config
    return load_config(["--config", str(REPO / "configs/smoke.yaml"), "--output_dir", str(tmp_path / "m"),
                        "--max_steps", "2", *options])


def test_tracking_options_reach_the_trainer_and_tensorboard_writes_its_events(tmp_path):
    from train.run import run
    from train.trainer import training_arguments
    config = smoke_config(tmp_path, "--report_to", "tensorboard", "--logging_dir", str(tmp_path / "tb"))
    assert training_arguments(config, str(tmp_path / "checkpoints")).report_to == ["tensorboard"]
    run(config)
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_tensorboard_logs_beside_the_model_by_default_and_nowhere_unless_asked(tmp_path):
    from train.run import run
    from train.trainer import logging_dir, training_arguments
    quiet = smoke_config(tmp_path)
    assert training_arguments(quiet, str(tmp_path / "checkpoints")).report_to == []
    assert logging_dir(quiet) == f"{tmp_path / 'm'}-outputs/runs"
    run(quiet)
    assert not (tmp_path / "m-outputs" / "runs").exists()


def test_push_to_hub_needs_a_repository(tmp_path):
    with pytest.raises(ConfigError, match="push_to_hub needs hub_model_id"):
        smoke_config(tmp_path, "--push_to_hub", "true")


def test_a_push_that_fails_says_so_in_one_line_and_keeps_the_model(tmp_path, monkeypatch):
    from tagger.cli import UserError
    from train.run import run
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing answers there
    config = smoke_config(tmp_path, "--push_to_hub", "true", "--hub_model_id", "someone/news-tagger")
    with pytest.raises(UserError, match=r"m is saved, but pushing it to the Hub as someone/news-tagger failed"):
        run(config)
    assert (tmp_path / "m" / "thresholds.json").is_file() and (tmp_path / "m" / "model.safetensors").is_file()
