"""Reading Label Studio JSON exports: the one module that knows the export format.

A full JSON export is a list of tasks; each task has `data` (our `text`, plus context such
as `article_id`) and `annotations`, each with a `result` list of control values. The labels
live in the Choices control that the run's labeling config names (tagger/labels.py): results of
another control, labels it does not list, and tasks without its text field are errors.

Resolution rule when a task has several annotations (documented in the README):
  1. cancelled (skipped) annotations are ignored;
  2. if any ground-truth annotation remains, the most recently updated one wins;
  3. otherwise a label is on when more than half of the annotations have it; an exact tie
     follows `tie_break` ("negative" by default: the guidelines say "when unsure, choose none").
Agreement is Cohen's kappa per label between the first two kept annotations of each task that
has two or more.
An annotation with an empty result means "no event". A task left with no annotation is skipped
and counted in the summary, never silently.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

from tagger.cli import UserError
from tagger.labels import LabelSchema


class ExportError(UserError, ValueError):
    """A Label Studio export that cannot be read; the message names the file and the task."""


@dataclass(frozen=True)
class Sentence:
    text: str
    labels: tuple[str, ...]
    group: str  # the article the sentence comes from: splits never cut through one
    task: str  # "file#id", to trace a row back to its Label Studio task
    outlet: str = ""


@dataclass
class ExportSummary:
    """What reading the exports kept and skipped, so nothing is dropped silently."""

    labels: tuple[str, ...] = ()
    tasks: int = 0
    sentences: int = 0
    skipped_unannotated: int = 0
    skipped_all_cancelled: int = 0
    cancelled_annotations: int = 0
    multi_annotated: int = 0
    label_counts: Counter = field(default_factory=Counter)
    # The first two kept annotations' label sets of every task annotated twice or more.
    annotator_pairs: list = field(default_factory=list)

    def add(self, other: "ExportSummary") -> None:
        for name, value in vars(other).items():
            if name != "labels":
                setattr(self, name, getattr(self, name) + value)

    def agreement(self) -> dict:
        """Cohen's kappa per label between the first two annotators of each doubly-annotated
        task; None where kappa is undefined (both annotators never, or always, chose the label)."""
        kappas = {}
        for label in self.labels:
            first = [label in a for a, _ in self.annotator_pairs]
            second = [label in b for _, b in self.annotator_pairs]
            defined = len(set(first) | set(second)) > 1
            kappas[label] = round(float(cohen_kappa_score(first, second)), 4) if defined else None
        return {"tasks": len(self.annotator_pairs), "cohen_kappa": kappas}

    def as_dict(self) -> dict:
        fields = {k: v for k, v in vars(self).items() if k not in ("annotator_pairs", "labels")}
        return {**fields, "label_counts": {label: self.label_counts[label] for label in self.labels},
                "agreement": self.agreement()}

    def __str__(self) -> str:
        counts = ", ".join(f"{label} {self.label_counts[label]}" for label in self.labels)
        return (
            f"{self.sentences} sentences from {self.tasks} tasks ({counts}); skipped "
            f"{self.skipped_unannotated} unannotated and {self.skipped_all_cancelled} all-cancelled "
            f"tasks; ignored {self.cancelled_annotations} cancelled annotations; "
            f"{self.multi_annotated} tasks resolved from several annotations"
            + (f"; Cohen's kappa over {len(self.annotator_pairs)} doubly-annotated tasks: " + ", ".join(
                f"{label} {kappa if kappa is None else f'{kappa:.2f}'}"
                for label, kappa in self.agreement()["cohen_kappa"].items()) if self.annotator_pairs else "")
        )


def read_exports(paths, schema: LabelSchema, tie_break: str = "negative") -> tuple[list[Sentence], ExportSummary]:
    """Read and combine several export files (tasks are told apart by file and id)."""
    sentences, summary = [], ExportSummary(labels=schema.labels)
    for path in paths:
        more, part = read_export(path, schema, tie_break)
        sentences += more
        summary.add(part)
    return sentences, summary


def read_export(path, schema: LabelSchema, tie_break: str = "negative") -> tuple[list[Sentence], ExportSummary]:
    path = Path(path)
    tasks = load_task_list(path)
    summary, sentences, seen_ids = ExportSummary(labels=schema.labels, tasks=len(tasks)), [], set()
    for position, task in enumerate(tasks):
        ident = task_id(task, position)
        where = f"{path}, task {ident}"
        if not isinstance(task, dict):
            raise ExportError(f"{where}: expected a task object, got {type(task).__name__}")
        if task.get("id") in seen_ids:
            raise ExportError(f"{where}: duplicated task id")
        seen_ids.add(task.get("id"))
        sentence = read_task(task, schema, Place(where, path), f"{path}#{ident}", tie_break, summary)
        if sentence is not None:
            sentences.append(sentence)
            summary.label_counts.update(sentence.labels)
    summary.sentences = len(sentences)
    return sentences, summary


@dataclass(frozen=True)
class Place:
    """Where a task stands, for error messages: 'FILE, task ID', and the file."""
    where: str
    path: Path


def beside_config(path: Path) -> Path | None:
    """The labeling config saved beside an export: `EXPORT.label_config.xml` (as `export` writes
    it), else `label_config.xml` in the same folder (as data/ holds the bundled one)."""
    for candidate in (path.with_suffix(".label_config.xml"), path.parent / "label_config.xml"):
        if candidate.is_file():
            return candidate
    return None


def config_hint(path: Path) -> str:
    found = beside_config(path)
    return f" (is this export from another project? pass --label_config {found})" if found else ""


def load_task_list(path: Path) -> list:
    if not path.is_file():
        raise ExportError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # tolerate a BOM, as editors on Windows add one
    except UnicodeDecodeError as error:
        raise ExportError(f"{path}: not UTF-8 (bad byte at offset {error.start})") from None
    if not text.strip():
        raise ExportError(f"{path}: the file is empty")
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as error:
        hint = " (this looks like a CSV export; export as JSON)" if looks_like_csv(text) else ""
        raise ExportError(f"{path}: not valid JSON{hint}: {error}") from None
    if not isinstance(tasks, list):
        raise ExportError(f"{path}: expected a list of tasks (Label Studio 'JSON' export)")
    if tasks and isinstance(tasks[0], dict) and "annotations" not in tasks[0] and "data" not in tasks[0]:
        raise ExportError(
            f"{path}: this looks like a JSON-MIN export (tasks without 'data' and "
            "'annotations'); export the project as full JSON instead"
        )
    return tasks


def looks_like_csv(text: str) -> bool:
    header = text.split("\n", 1)[0]
    return "," in header and not header.lstrip().startswith(("[", "{"))


def task_id(task, position: int) -> str:
    return str(task.get("id")) if isinstance(task, dict) and "id" in task else f"#{position}"


def read_task(task: dict, schema: LabelSchema, place: Place, ref: str, tie_break: str,
              summary: ExportSummary) -> Sentence | None:
    data, where = task.get("data"), place.where
    if not isinstance(data, dict) or not isinstance(data.get(schema.text_field), str):
        raise ExportError(f"{where}: no text at data.{schema.text_field} (the field that Text "
                          f"{schema.to_name!r} of the labeling config shows){config_hint(place.path)}")
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        raise ExportError(f"{where}: 'annotations' is not a list")
    kept = [a for a in annotations if not a.get("was_cancelled")]
    summary.cancelled_annotations += len(annotations) - len(kept)
    if not kept:
        if annotations:
            summary.skipped_all_cancelled += 1
        else:
            summary.skipped_unannotated += 1
        return None
    label_sets = [annotation_labels(a, schema, place) for a in kept]
    if len(kept) > 1:
        summary.multi_annotated += 1
        summary.annotator_pairs.append((label_sets[0], label_sets[1]))
    labels = resolve_annotations(label_sets, kept, tie_break, schema.labels)
    return Sentence(
        text=data[schema.text_field],
        labels=labels,
        group=str(data.get("article_id") or ref),
        task=ref,
        outlet=str(data.get("source", "")),
    )


def annotation_labels(annotation: dict, schema: LabelSchema, place: Place) -> set[str]:
    """The labels one annotation chose; an empty result means 'no event'."""
    where = f"{place.where}, annotation {annotation.get('id')}"
    result = annotation.get("result")
    if not isinstance(result, list):
        raise ExportError(f"{where}: 'result' is not a list")
    chosen = set()
    for region in result:
        if not isinstance(region, dict) or region.get("from_name") != schema.from_name:
            name = region.get("from_name") if isinstance(region, dict) else region
            raise ExportError(
                f"{where}: result from control {name!r}; the labeling config's Choices control is "
                f"{schema.from_name!r}{config_hint(place.path)}")
        choices = (region.get("value") or {}).get("choices")
        if not isinstance(choices, list):
            raise ExportError(f"{where}: value.choices is not a list")
        unknown = set(choices) - set(schema.labels)
        if unknown:
            raise ExportError(f"{where}: label(s) {sorted(unknown)} not in the labeling config "
                              f"(its labels: {list(schema.labels)}){config_hint(place.path)}")
        chosen.update(choices)
    return chosen


def resolve_annotations(label_sets: list[set], annotations: list[dict], tie_break: str,
                        labels: tuple[str, ...]) -> tuple[str, ...]:
    """One label set from several annotations, by the rule in this module's docstring."""
    if tie_break not in ("negative", "positive"):
        raise ValueError(f"tie_break must be 'negative' or 'positive', not {tie_break!r}")
    truths = [(a.get("updated_at") or "", i) for i, a in enumerate(annotations) if a.get("ground_truth")]
    if truths:
        return tuple(label for label in labels if label in label_sets[max(truths)[1]])
    votes = Counter(label for labels in label_sets for label in labels)
    half = len(label_sets) / 2
    return tuple(
        label for label in labels
        if votes[label] > half or (votes[label] == half and tie_break == "positive")
    )
