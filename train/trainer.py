"""The Hugging Face Trainer, set up for multi-label tagging: weighted BCE loss, macro-F1
model selection with early stopping, dynamic padding, mixed precision on GPU."""

import dataclasses
import math
import os

import numpy as np
import torch
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, TrainingArguments

from tagger.gpu import skip_cudnn_attention
from tagger.metrics import apply_thresholds, report, sigmoid, tune_thresholds
from train.config import ConfigError, TrainConfig

# Without validation, a checkpoint (for --resume) at most this often: a small split's epochs are a few steps.
MIN_SAVE_STEPS = 100


def positive_weights(labels, cap: float) -> torch.Tensor:
    """negatives/positives per class in the training split, at most `cap`."""
    labels = np.asarray(labels)
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    return torch.tensor(np.clip(negatives / np.maximum(positives, 1), 1.0, cap), dtype=torch.float32)


def weighted_bce(pos_weight: torch.Tensor | None):
    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]
        weight = None if pos_weight is None else pos_weight.to(logits.device)
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits.float(), labels.to(logits.dtype).float(), pos_weight=weight)
    return loss


def validation_metrics(prediction) -> dict:
    """Model selection metric: macro-F1 with thresholds tuned on this validation set, as the
    saved model will use them (at a fixed 0.5, weighted BCE scores early checkpoints as 0)."""
    scores = sigmoid(prediction.predictions)
    columns = [str(i) for i in range(scores.shape[1])]  # averages only: the label names do not matter
    tuned = report(prediction.label_ids, apply_thresholds(scores, tune_thresholds(prediction.label_ids, scores, columns)),
                   columns)
    at_half = report(prediction.label_ids, scores >= 0.5, columns)
    return {"macro_f1": tuned["macro"]["f1"], "micro_f1": tuned["micro"]["f1"],
            "macro_f1_at_0.5": at_half["macro"]["f1"]}


def mixed_precision(choice: str) -> str:
    """'bf16', 'fp16' or 'no' for this machine. On a CPU, 'auto' stays fp32: bf16 autocast
    trains faster on AMX (docs/performance.md), but it is opt-in there, as most CPUs lack bf16 units."""
    if choice == "fp16" and not torch.cuda.is_available():
        raise ConfigError("mixed_precision 'fp16' needs a GPU; on a CPU use 'bf16' or 'no'")
    if choice != "auto":
        return choice
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def logging_dir(config: TrainConfig) -> str:
    """TensorBoard's folder: beside the model, not in the staging folder, which goes at the end."""
    return config.logging_dir or f"{config.output_dir}-outputs/runs"


# The Trainer's options, as TrainConfig carries them; training_arguments() passes them on.
TRAINER_OPTIONS = [f.name for f in dataclasses.fields(TrainingArguments) if f.init]


def training_arguments(config: TrainConfig, checkpoint_dir: str, validating: bool = True,
                       training_sentences: int = 0) -> TrainingArguments:
    """Every TrainingArguments option as configured, except those the run sets (SET_BY_THE_RUN).
    Without a validation split (validation_fraction 0) nothing is evaluated: the run trains
    num_train_epochs (at least min_steps) and keeps the last weights."""
    strategy = "steps" if config.eval_steps else "epoch"
    save_steps = config.eval_steps
    if not validating and not config.eval_steps:
        # Nothing to evaluate: checkpoints only for --resume, not after each of a small split's many epochs.
        strategy, save_steps = "steps", max(steps_per_epoch(config, training_sentences), MIN_SAVE_STEPS)
    # transformers 5 reads TensorBoard's folder from the environment only.
    os.environ["TENSORBOARD_LOGGING_DIR"] = logging_dir(config)
    on_gpu = torch.cuda.is_available()
    if on_gpu:
        skip_cudnn_attention()  # process-wide; it slowed bf16 training up to 7.5x
    precision = mixed_precision(config.mixed_precision)
    set_by_the_run = dict(
        output_dir=checkpoint_dir,
        max_steps=max_steps(config, training_sentences),
        eval_strategy=strategy if validating else "no",
        save_strategy=strategy,
        save_steps=save_steps,
        load_best_model_at_end=validating,
        metric_for_best_model="macro_f1" if validating else None,
        greater_is_better=True,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=config.use_cpu or not on_gpu,  # also what makes several CPU processes train together (gloo)
        # train.hub pushes the finished model folder, thresholds and model card included; the
        # Trainer would push checkpoints.
        push_to_hub=False,
    )
    configured = {name: getattr(config, name) for name in TRAINER_OPTIONS if name not in set_by_the_run}
    return TrainingArguments(**configured, **set_by_the_run)


def max_steps(config: TrainConfig, training_sentences: int) -> int:
    """config.max_steps, or min_steps where num_train_epochs would train fewer (-1: epochs decide)."""
    if config.max_steps > 0 or config.min_steps <= 0:
        return config.max_steps
    too_few = steps_per_epoch(config, training_sentences) * config.num_train_epochs < config.min_steps
    return config.min_steps if too_few else -1


def steps_per_epoch(config: TrainConfig, training_sentences: int) -> int:
    """Optimizer steps: one per gradient_accumulation_steps batches on every process."""
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    batch = config.per_device_train_batch_size * processes * config.gradient_accumulation_steps
    return max(1, math.ceil(training_sentences / batch))


def freeze_embeddings(model) -> None:
    """Token, position (and segment) embeddings and their LayerNorm, for BERT, DistilBERT and MPNet alike."""
    embeddings = getattr(model.base_model, "embeddings", None)
    if embeddings is None:
        raise ConfigError(f"freeze_embeddings: {type(model).__name__} has no embedding layer to freeze")
    embeddings.requires_grad_(False)


def freeze_layers(model, count: int) -> None:
    """The embeddings and the first `count` transformer layers (BERT's encoder.layer, DistilBERT's
    transformer.layer, MPNet's encoder.layer): backward stops above them."""
    freeze_embeddings(model)
    total = model.config.num_hidden_layers
    layers = [m for m in model.base_model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == total]
    if not layers or count > total:
        raise ConfigError(f"frozen_layers {count}: {type(model).__name__} has {total} transformer layers"
                          + ("" if layers else ", not found as one list of layers"))
    for layer in layers[0][:count]:
        layer.requires_grad_(False)


def build_trainer(config, model, tokenizer, splits, checkpoint_dir) -> Trainer:
    if config.freeze_embeddings:
        freeze_embeddings(model)
    if config.frozen_layers:
        freeze_layers(model, config.frozen_layers)
    pos_weight = positive_weights(splits["train"]["labels"], config.max_class_weight) if config.class_weights else None
    validating = len(splits["validation"]) > 0
    return Trainer(
        model=model,
        args=training_arguments(config, checkpoint_dir, validating, len(splits["train"])),
        train_dataset=splits["train"],
        eval_dataset=splits["validation"] if validating else None,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_loss_func=weighted_bce(pos_weight),
        compute_metrics=validation_metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)] if validating else [],
    )
