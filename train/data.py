"""What a run trains on: the labeling config's labels, the exports read with them, and the checks
that stop a run before training when the data cannot teach every label.

Each check ends the run with one line naming the file or the label and what a run needs:
  - a label of the config that no annotated sentence carries (no threshold can be tuned for it);
  - several exports of which some were labelled without some of the config's labels (the bundled
    corpus together with a project that adds `ceasefire`): their sentences would teach "not
    ceasefire" silently. An export counts as labelled with a label when the labeling config saved
    beside it lists it, or, without one, when one of its sentences carries it; `allow_label_mix`
    trains anyway;
  - splits in which a label has no training sentence (a project too small); a label with too few
    validation sentences to tune its threshold keeps the default one, and the log says so.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from tagger.annotations import ExportSummary, Sentence, beside_config, read_export
from tagger.cli import UserError
from tagger.labels import LabelConfigError, LabelSchema, choices_controls, read_label_config
from tagger.metrics import DEFAULT_THRESHOLD, MIN_POSITIVES
from train.recipes import SMALL_DATA_LIMIT
from train.splits import label_counts


log = logging.getLogger(__name__)


class DataError(UserError):
    pass


@dataclass
class TrainingData:
    schema: LabelSchema
    label_config: str  # the XML, saved into the model folder
    sentences: list[Sentence]
    summary: ExportSummary


def load_data(config) -> TrainingData:
    """The run's labeling config and every export read with it, checked as the docstring says."""
    schema, label_config = read_label_config(config.label_config, config.choices_control)
    sentences, summary, files = [], ExportSummary(labels=schema.labels), []
    for path in config.data_files:
        more, part = read_export(path, schema, config.tie_break)
        sentences += more
        summary.add(part)
        files.append((Path(path), part))
    check_every_label_annotated(schema, summary, config.label_config)
    if len(files) > 1 and not config.allow_label_mix:
        check_no_label_mix(schema, files)
    return TrainingData(schema, label_config, sentences, summary)


def check_every_label_annotated(schema: LabelSchema, summary: ExportSummary, label_config) -> None:
    missing = [label for label in schema.labels if summary.label_counts[label] == 0]
    if missing:
        raise DataError(f"label(s) {missing} of {label_config} are on no annotated sentence of the data files "
                        f"({summary.sentences} sentences: {counts(schema, summary)}): the model cannot learn "
                        "them, nor can a threshold be tuned; annotate some, or remove them from the config")


def check_no_label_mix(schema: LabelSchema, files: list[tuple[Path, ExportSummary]]) -> None:
    for path, summary in files:
        known = labelled_with(path, summary)
        missing = [label for label in schema.labels if label not in known]
        config = beside_config(path)
        if missing:
            raise DataError(
                f"{path}: labelled without {missing} (no sentence carries them"
                f"{'' if config is None else f' and its labeling config {config} lacks them'}), "
                "so its sentences would teach the model that none of them is ever one of these; train on "
                "exports of projects with the same labels, or pass --allow_label_mix true to train anyway")


def labelled_with(path: Path, summary: ExportSummary) -> set[str]:
    """The labels an export's annotators could choose: its saved labeling config's, else those it uses."""
    used = {label for label, n in summary.label_counts.items() if n}
    config = beside_config(path)
    if config is None:
        return used
    try:
        return used | {label for control in choices_controls(config.read_text(encoding="utf-8"), str(config))
                       for label in control.labels}
    except LabelConfigError:
        return used


def counts(schema: LabelSchema, summary: ExportSummary) -> str:
    return ", ".join(f"{label} {summary.label_counts[label]}" for label in schema.labels)


def check_splits_can_train(splits, schema: LabelSchema, tunes_thresholds: bool, small_recipe: bool = False) -> None:
    """Every label on at least one training sentence, else one line with the counts and what a
    run needs; a label with fewer than MIN_POSITIVES validation sentences keeps the default
    threshold (tagger.metrics.tune_thresholds), which the log says."""
    per_split = {name: label_counts(splits[name], schema.labels) for name in splits}
    untrainable = [label for label in schema.labels if per_split["train"][label] == 0]
    if untrainable:
        total = {label: sum(counts[label] for counts in per_split.values()) for label in schema.labels}
        articles = len({group for name in splits for group in splits[name]["group"]})
        needs = ("The small-data recipe needs each label on at least one training sentence: annotate tasks with "
                 "these labels" if small_recipe else
                 f"A run needs each label on sentences of at least {len(splits)} articles (one per split) and about "
                 "10 sentences per label to learn it: annotate more tasks with these labels, or train with the "
                 f"small-data recipe (--recipe small, or auto below {SMALL_DATA_LIMIT:,} sentences), which needs "
                 "one sentence per label")
        raise DataError(
            f"too few annotated sentences to train: {sum(map(len, splits.values()))} sentences from {articles} "
            f"articles ({', '.join(f'{label} {n}' for label, n in total.items())}); split by article into "
            f"{', '.join(f'{name} {len(splits[name])}' for name in splits)}, no training sentence carries "
            f"{untrainable}. {needs}")
    untuned = [label for label in schema.labels if per_split["validation"][label] < MIN_POSITIVES]
    if tunes_thresholds and untuned:
        log.warning("Fewer than %d validation sentences carry %s: their thresholds stay at %.1f instead of being "
                    "tuned (validation: %s)", MIN_POSITIVES, untuned, DEFAULT_THRESHOLD,
                    ", ".join(f"{label} {n}" for label, n in per_split["validation"].items()))
