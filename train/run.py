"""One training run, step by step: read exports, split, fine-tune, tune thresholds, evaluate,
save a self-describing model folder."""

import dataclasses
import logging
import os
import shutil
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import transformers
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from transformers import set_seed

from tagger import artifacts, labels
from tagger.annotations import read_exports
from tagger.checked_int8 import SENTENCES
from tagger.cli import UserError, default_output_dir
from tagger.metrics import apply_thresholds, evaluation, report, sigmoid, tune_thresholds
from tagger.predictor import measure_int8_margins, thresholds_file
from train import checkpoints, hub, output, recipes
from train.config import TrainConfig, to_yaml
from train.data import TrainingData, check_splits_can_train, load_data
from train.distill import with_teacher
from train.linear_probe import init_head_from_probe
from train.model import load_base_model
from train.splits import fingerprint, label_counts, make_splits
from train.trainer import build_trainer, mixed_precision

log = logging.getLogger(__name__)

# The share rule's floor, a little under the lowest cut measured to help (10 of 2,000 sentences:
# 0.0033); below it, a label with two sentences among 2,000 was put on nearly every sentence
# (docs/results.md#a-rare-label-in-a-larger-project-2026-12-07).
LOWEST_SHARE_CUT = 0.003


def run(config: TrainConfig) -> Path:
    data = load_data(config)
    log.info("Labels %s (Choices %r on Text %r, data.%s) from %s", list(data.schema.labels), data.schema.from_name,
             data.schema.to_name, data.schema.text_field, config.label_config)
    log.info("Read %s", data.summary)
    config, why = recipes.resolve(config, len(data.sentences))
    log.info("Recipe %s: %s", config.recipe, why)
    config, splits = split(config, data)
    return train_on(config, splits, data)


def split(config: TrainConfig, data: TrainingData):
    """(config, splits) by article. A small project under the small recipe, whose test articles would
    take a label's only sentences or cannot be set apart, trains on every sentence instead, without a
    test score: a test split of a few sentences would say little, and cross-validation says more."""
    try:
        splits = make_splits(data.sentences, data.schema, config.validation_fraction, config.test_fraction,
                             config.split_seed, config.test_outlets)
        untrained = untrained_labels(splits, data.schema)
        if config.recipe != "small" or config.test_outlets or not untrained:
            return config, splits
        why = f"holding out test articles would leave {untrained} without a training sentence"
    except UserError as error:
        if config.recipe != "small" or config.test_outlets:
            raise
        why = str(error)
    log.warning("Small project: %s. Every sentence trains and there is no test score; "
                "`python -m eval.crossval` estimates one", why)
    return (dataclasses.replace(config, test_fraction=0.0),
            make_splits(data.sentences, data.schema, 0.0, 0.0, config.split_seed))


def untrained_labels(splits, schema) -> list[str]:
    return [label for label, n in label_counts(splits["train"], schema.labels).items() if n == 0]


def splits_as_trained(model_dir: Path, data_files=None):
    """(splits, summary) rebuilt exactly as the run in model_dir made them, from its saved
    options and labels, over its own data files or the ones given."""
    options, schema = artifacts.trained_options(model_dir), labels.of_model(model_dir)
    sentences, summary = read_exports(data_files or options["data_files"], schema, options["tie_break"])
    # Runs from before split_seed existed split with their seed.
    split_seed = options.get("split_seed", options.get("seed", 42))
    splits = make_splits(sentences, schema, options["validation_fraction"], options["test_fraction"], split_seed,
                         options.get("test_outlets", []))
    return splits, summary


def train_on(config: TrainConfig, splits, data: TrainingData) -> Path:
    """Fine-tune on splits["train"], select and tune on "validation", report on "test", save."""
    log.info("Splits: %s", {name: len(split) for name, split in splits.items()})
    schema = data.schema
    check_splits_can_train(splits, schema, tunes_thresholds=not (config.thresholds or config.fixed_threshold),
                           small_recipe=config.recipe == "small")
    if config.thresholds:
        thresholds_file(Path(config.thresholds), schema.labels)  # a bad file stops the run now, not after training
    elif not len(splits["validation"]) and not config.fixed_threshold:
        raise UserError("no validation split (validation_fraction 0): give the thresholds with --thresholds, "
                        "e.g. the thresholds.json of `python -m eval.crossval` with the same options")
    output_dir = Path(config.output_dir)
    # One process, or several under `accelerate launch` / torchrun (gloo on CPUs). Only the main
    # process writes the output folder, so only it holds the folder's lock.
    processes = PartialState(cpu=not torch.cuda.is_available())
    with output.exclusive(output_dir) if processes.is_main_process else nullcontext():
        finished = [processes.is_main_process and output.prepare(output_dir, config.overwrite_output_dir,
                                                                 config.resume)]
        if broadcast_object_list(finished)[0]:
            log.info("The interrupted run had finished; its model is in %s", output_dir)
            return output_dir
        set_seed(config.seed)
        base = load_base_model(config.model_name_or_path, config.allow_offline_fallback, schema.labels)
        if config.head_init == "probe" and not config.resume:
            init_head_from_probe(base.model, base.tokenizer, list(splits["train"]["text"]), splits["train"]["labels"],
                                 config.max_length)
        training = splits if not config.teacher else with_teacher(
            splits, config.teacher, config.unlabelled_files, config.teacher_weight, config.seed, schema.labels)
        tokenized = training.map(lambda batch: base.tokenizer(batch["text"], truncation=True,
                                                             max_length=config.max_length), batched=True)
        work_dir = output.staging_dir(output_dir)
        with output.write_errors_reported(work_dir, output_dir):
            trainer = fit(config, base, tokenized, work_dir / "checkpoints", processes)
            thresholds, metrics = tune_and_evaluate(trainer, tokenized, config, schema.labels)
            info = run_info(config, base, splits, data.summary, processes.num_processes, best_epoch(trainer),
                            trainer.state.global_step)
            processes.wait_for_everyone()  # every process is done with the checkpoints
            if processes.is_main_process:
                save(trainer, config, work_dir, output_dir, thresholds, metrics, info, data, margin_sentences(splits))
    return output_dir


def fit(config: TrainConfig, base, tokenized, checkpoint_dir: Path, processes):
    """Train, or with --resume continue from the newest complete checkpoint; the Trainer then
    restores optimizer, scheduler, RNG and early-stopping state with it."""
    resume_from = None
    if config.resume:
        with processes.main_process_first():  # the main process deletes incomplete checkpoints
            resume_from = checkpoints.resume_point(checkpoint_dir, delete_incomplete=processes.is_main_process)
    if resume_from is not None and checkpoints.training_stopped(resume_from):
        log.info("Training had ended at %s: the best checkpoint is reloaded, no step is trained", resume_from.name)
        config = dataclasses.replace(config, max_steps=checkpoints.step(resume_from))
    trainer = build_trainer(config, base.model, base.tokenizer, tokenized, str(checkpoint_dir))
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return trainer


def tune_and_evaluate(trainer, tokenized, config: TrainConfig, label_names) -> tuple[dict, dict]:
    """Per-class thresholds from validation only (or from --thresholds), then validation and
    test metrics with them."""
    scored_splits = {name: scored(trainer, tokenized[name]) for name in ("validation", "test") if len(tokenized[name])}
    if config.thresholds:
        thresholds = thresholds_file(Path(config.thresholds), label_names)
    elif config.fixed_threshold:
        thresholds = untuned_thresholds(config, label_names, tokenized["train"]["labels"])
    else:
        thresholds = tune_thresholds(*scored_splits["validation"], label_names)
    return thresholds, evaluation(config.output_dir, config.data_files, {
        name: (len(gold), {"model": report(gold, apply_thresholds(scores, thresholds), label_names)})
        for name, (gold, scores) in scored_splits.items()})


def untuned_thresholds(config: TrainConfig, label_names, train_labels) -> dict[str, float]:
    """config.fixed_threshold for each label with at least config.threshold_positives training
    positives, lower in proportion for a label with fewer; lower still, by the square of the
    shortfall, for a label on a smaller share of the training sentences than config.threshold_share,
    but not below LOWEST_SHARE_CUT."""
    train_labels = np.asarray(train_labels)
    positives = np.maximum(train_labels.sum(axis=0), 1)
    thresholds = config.fixed_threshold * np.minimum(1, positives / (config.threshold_positives or 1))
    if config.threshold_share:
        lowered = thresholds * np.minimum(1, positives / len(train_labels) / config.threshold_share) ** 2
        thresholds = np.maximum(lowered, np.minimum(thresholds, LOWEST_SHARE_CUT))
    return {label: float(f"{x:.4g}") for label, x in zip(label_names, thresholds)}


def run_info(config: TrainConfig, base, splits, summary, processes: int, epoch: float | None,
             steps: int | None = None) -> dict:
    """What the run used: base model, data and its fingerprint, split sizes, what was skipped; and
    the epoch whose model was kept (None without validation)."""
    return {
        "base_model": base.source,
        "base_model_requested": config.model_name_or_path,
        "offline_fallback_used": base.fell_back,
        "base_model_sha256": base.weights_sha256,
        "data_files": [str(f) for f in config.data_files],
        "recipe": config.recipe,
        "thresholds_file": config.thresholds or None,
        "fixed_threshold": config.fixed_threshold or None,
        "threshold_positives": config.threshold_positives if config.fixed_threshold else None,
        "threshold_share": config.threshold_share if config.fixed_threshold else None,
        "lowest_share_threshold": LOWEST_SHARE_CUT if config.fixed_threshold and config.threshold_share else None,
        "data_fingerprint": fingerprint(splits),
        "export_summary": summary.as_dict(),
        "split_sizes": {name: len(split) for name, split in splits.items()},
        "split_label_counts": {name: label_counts(split, summary.labels) for name, split in splits.items()},
        "processes": processes,
        "mixed_precision": mixed_precision(config.mixed_precision),
        "transformers_version": transformers.__version__,
        "best_epoch": epoch,
        "optimizer_steps": steps,
    }


def best_epoch(trainer) -> float | None:
    """The epoch of the best validation macro-F1 (the weights kept), None without validation."""
    evaluations = [entry for entry in trainer.state.log_history if "eval_macro_f1" in entry]
    return max(evaluations, key=lambda entry: entry["eval_macro_f1"])["epoch"] if evaluations else None


def scored(trainer, dataset):
    """(gold, scores) in the order the Trainer used: with length grouping, not the dataset's.
    Scores are fp32, as `eval` and `eval.predict` give by default, also after mixed-precision
    training: bf16 scores differ a little, enough to move a threshold or flip a sentence on one."""
    # Training is over: take accelerate's autocast wrapper off the model's forward (in place).
    trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    prediction = trainer.predict(dataset)
    return prediction.label_ids, sigmoid(prediction.predictions)


def margin_sentences(splits) -> tuple[list[str], str]:
    """(texts, what they are): the sentences that measure int8's margins, validation first."""
    validation = list(splits["validation"]["text"])[:SENTENCES]
    training = list(splits["train"]["text"])[:SENTENCES - len(validation)]
    return validation + training, f"{len(validation)} validation and {len(training)} training sentences"


def save(trainer, config, work_dir: Path, output_dir: Path, thresholds, metrics, run_info, data: TrainingData,
         margin_texts: tuple[list[str], str]) -> None:
    """Write the model folder as staging/model.tmp, rename it to staging/model once complete,
    then publish it to output_dir."""
    building, model_dir = work_dir / "model.tmp", work_dir / "model"
    if building.exists():
        shutil.rmtree(building)
    trainer.save_model(str(building))  # weights (safetensors), config.json with labels, tokenizer
    (building / "training_args.bin").unlink(missing_ok=True)  # a pickle; train_config.yaml says it all
    artifacts.write_json(building / "thresholds.json", thresholds)
    artifacts.write_json(building / "metrics.json", metrics)
    artifacts.write_json(building / "run_info.json", run_info)
    artifacts.write_text_atomic(building / "train_config.yaml", to_yaml(config))
    labels.save(building, data.schema, data.label_config)
    artifacts.write_text_atomic(building / "README.md", artifacts.model_card(run_info, metrics, thresholds, data.schema))
    if config.int8_margins:  # its ONNX exports go where the published model's are looked for
        measure_int8_margins(building, *margin_texts, onnx_dir=default_output_dir(output_dir, "onnx"))
    os.rename(building, model_dir)
    output.publish(work_dir, output_dir)
    log.info("Saved the model to %s", output_dir)
    if config.push_to_hub:
        hub.push(output_dir, config.hub_model_id)
