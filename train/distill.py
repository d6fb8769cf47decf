"""Distillation: a trained model (the teacher, e.g. MPNet-base) gives soft targets to the one
being trained (the student, e.g. MiniLM-L6).

The student's training split changes in two ways; validation and test stay as annotated:
  - each annotated training sentence's target becomes (1 - w) * annotation + w * teacher score
    (w = teacher_weight);
  - unlabelled sentences (Label Studio tasks, e.g. from `python -m train.prepare`) join it with
    the teacher's scores as targets: every one the teacher tags, and as many it does not, drawn
    at random, so that the extra text does not drown the annotated sentences in negatives.
Unlabelled sentences from an article of the validation or test split, or from an outlet that the
test split holds out whole, are left out (counted in the log): the student must not see the text
it is scored on. Pass unlabelled tasks with the corpus's `article_id` and `source` for that check."""

import logging
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, concatenate_datasets

from tagger.annotations import ExportError, load_task_list
from tagger.cli import UserError
from tagger.metrics import apply_thresholds
from tagger.predictor import Tagger

log = logging.getLogger(__name__)


def with_teacher(splits: DatasetDict, teacher_dir: str, unlabelled_files: list[str], teacher_weight: float,
                 seed: int, labels: tuple[str, ...]) -> DatasetDict:
    """The splits with the training split's targets softened by the teacher and the chosen
    unlabelled sentences added."""
    teacher = Tagger(Path(teacher_dir), mode="fp32")  # its exact scores become targets
    if teacher.schema.labels != labels:
        raise UserError(f"{teacher_dir}: the teacher tags {list(teacher.schema.labels)}, this run trains "
                        f"{list(labels)}: distil from a model with the same labels in the same order")
    train = splits["train"]
    gold = np.asarray(train["labels"], dtype=np.float32)
    soft = (1 - teacher_weight) * gold + teacher_weight * teacher.scores(list(train["text"]))
    parts = [train.remove_columns("labels").add_column("labels", soft.tolist())]
    tasks = unlabelled_tasks(unlabelled_files, splits, teacher.schema.text_field)
    if tasks:
        parts.append(chosen_unlabelled(teacher, tasks, seed))
    log.info("Distilling from %s: %d annotated training sentences (teacher weight %.2f), %d unlabelled",
             teacher_dir, len(train), teacher_weight, sum(map(len, parts)) - len(train))
    return DatasetDict(train=concatenate_datasets(parts), **{name: splits[name] for name in splits if name != "train"})


def unlabelled_tasks(paths: list[str], splits: DatasetDict, text_field: str) -> list[dict]:
    """{text, group, task} of every unlabelled sentence that is not annotated already, shares no
    article with validation or test, and is not from an outlet held out of training (repeats are
    kept once)."""
    held_groups = {group for name in splits if name != "train" for group in splits[name]["group"]}
    # Outlets held out whole (eval.crossval --outlet_folds, test_outlets): none of their text either.
    held_outlets = set(splits["test"]["outlet"]) - set(splits["train"]["outlet"]) - {""}
    seen = {text for name in splits for text in splits[name]["text"]}
    kept, left_out = [], 0
    for path in map(Path, paths):
        for position, task in enumerate(load_task_list(path)):
            data = task.get("data") if isinstance(task, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get(text_field), str):
                raise ExportError(f"{path}, task {position}: no text at data.{text_field}")
            text, group = data[text_field], str(data.get("article_id", f"{path}#{position}"))
            if group in held_groups or data.get("source") in held_outlets:
                left_out += 1
            elif text not in seen:
                seen.add(text)
                kept.append({"text": text, "group": group, "task": f"{path.name}#{position}"})
    if paths:
        log.info("Unlabelled sentences: %d new, %d left out (their article or held-out outlet is in "
                 "validation or test)", len(kept), left_out)
    return kept


def chosen_unlabelled(teacher: Tagger, tasks: list[dict], seed: int) -> Dataset:
    """Every sentence the teacher tags, plus as many untagged ones drawn at random."""
    scores = teacher.scores([task["text"] for task in tasks])
    positive = apply_thresholds(scores, teacher.thresholds).any(axis=1)
    negatives = np.flatnonzero(~positive)
    drawn = np.random.default_rng(seed).choice(negatives, size=min(positive.sum(), len(negatives)), replace=False)
    rows = np.sort(np.concatenate([np.flatnonzero(positive), drawn]))
    return Dataset.from_dict({
        "text": [tasks[i]["text"] for i in rows],
        "group": [tasks[i]["group"] for i in rows],
        "task": [tasks[i]["task"] for i in rows],
        "outlet": ["" for _ in rows],
        "labels": scores[rows].tolist(),
    })
