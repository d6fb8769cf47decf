"""python -m eval.audit --config CONFIG [--data_files EXPORT...] [--folds K] --output_dir DIR [--push --project ID]

Finds annotations that are likely wrong. Every annotated sentence is scored by a model that did
not train on it (the out-of-fold scores of `eval.crossval`, run into DIR/crossval, or reused from
--crossval_dir; with --resume, as here, finished folds are reused), and cleanlab's confident
learning (`cleanlab.multilabel_classification`, one-vs-rest per label) estimates per label how many
labels are wrong and flags that many (sentence, label) pairs, those whose given label disagrees
most with what the model says: a label given where the
model is sure it is absent, or missing where it is sure it is present. They are ranked by
suspicion, 1 - cleanlab's self-confidence (the out-of-fold score of the label as given).

Writes DIR/suspects.jsonl (most suspicious first: task id, Label Studio annotation ids and
annotators, article, outlet, text, given labels, out-of-fold scores, the suspected label and what is
suspected of it, TF-IDF's out-of-fold labels as a second opinion) and DIR/audit.md (per label:
counts and the top suspects). With --push, the suspects' tasks become a Data Manager tab "Review:
likely label errors" in the Label Studio project the export came from (--url, --api_key and
--project as `python -m labelstudio` takes them; with several data files, --push_files names the
ones from that project); running it again replaces the tab. Annotations are never changed.
"""

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from eval.crossval import add_fold_options, cross_validate
from tagger.annotations import load_task_list, task_id
from tagger.artifacts import write_text_atomic
from tagger.cli import UserError, run_command, spellings
from train.config import config_parser, parse_config
from train.data import load_data

log = logging.getLogger(__name__)

TFIDF = "TF-IDF + logistic regression"


def out_of_fold(config, data, crossval_dir: Path, folds: int, outlet_folds) -> list[dict]:
    """The rows of crossval_dir/out_of_fold.jsonl when they score exactly the sentences of `data`
    (train.data.load_data) with their current labels; else cross-validate first (finished folds
    are reused)."""
    path = crossval_dir / "out_of_fold.jsonl"
    current = {s.task: list(s.labels) for s in data.sentences}

    def scored_rows() -> list[dict] | None:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []
        same = len(rows) == len(current) and all(current.get(row["task"]) == row["labels"] for row in rows)
        return rows if same else None

    rows = scored_rows()
    if rows is None:
        log.info("Cross-validating into %s (finished folds are reused)", crossval_dir)
        cross_validate(dataclasses.replace(config, output_dir=str(crossval_dir), resume=True), folds, outlet_folds)
        rows = scored_rows()
    if rows is None:
        raise UserError(f"{path}: does not score the sentences of the data files with their labels")
    return rows


def as_arrays(rows: list[dict], labels) -> tuple[np.ndarray, np.ndarray]:
    """(gold 0/1, out-of-fold scores) of out_of_fold.jsonl rows, columns in label order."""
    gold = np.array([[float(label in row["labels"]) for label in labels] for row in rows])
    return gold, np.array([[row["scores"][label] for label in labels] for row in rows])


def rank_suspects(gold: np.ndarray, scores: np.ndarray) -> list[tuple[int, int, float]]:
    """(row, label column, suspicion) of each pair that confident learning flags, most suspicious first."""
    from cleanlab.multilabel_classification.filter import find_multilabel_issues_per_class
    from cleanlab.multilabel_classification.rank import get_label_quality_scores_per_class

    given = [np.flatnonzero(row).tolist() for row in gold]
    # How many per label: cleanlab's confident joint; which: the lowest self-confidence (on injected
    # flips, more precise than its default prune_by_noise_rate at the same recall: docs/results.md).
    flagged = find_multilabel_issues_per_class(given, scores, return_indices_ranked_by="self_confidence",
                                               filter_by="low_self_confidence")[0]
    suspicion = 1 - get_label_quality_scores_per_class(given, scores, method="self_confidence")
    pairs = [(int(i), k, float(suspicion[i, k])) for k, rows in enumerate(flagged) for i in rows]
    return sorted(pairs, key=lambda pair: -pair[2])


def baseline_suspects(gold: np.ndarray, scores: np.ndarray) -> list[tuple[int, int, float]]:
    """The simple baseline: every pair whose out-of-fold score is on the other side of 0.5 from the
    given label, most distant first."""
    distance = np.abs(gold - scores)
    pairs = [(int(i), int(k), float(distance[i, k])) for i, k in zip(*np.nonzero(distance > 0.5))]
    return sorted(pairs, key=lambda pair: -pair[2])


def task_details(data_files) -> dict[str, dict]:
    """Per task reference ('FILE#ID', as the splits name tasks): its Label Studio ids, annotators and article."""
    details = {}
    for path in map(Path, data_files):
        for position, task in enumerate(load_task_list(path)):
            annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
            details[f"{path}#{task_id(task, position)}"] = {
                "task_id": task.get("id"), "file": str(path),
                "annotation_ids": [a.get("id") for a in annotations],
                "annotators": [a.get("completed_by") for a in annotations],
                "article_id": (task.get("data") or {}).get("article_id")}
    return details


def suspect_rows(rows: list[dict], labels, pairs, details: dict) -> list[dict]:
    result = []
    for i, k, suspicion in pairs:
        row, label = rows[i], labels[k]
        given = label in row["labels"]
        result.append({**details[row["task"]], "task": row["task"], "outlet": row["outlet"], "text": row["text"],
                       "labels": row["labels"], "scores": row["scores"], "suspect_label": label,
                       "suspected": "given, likely absent" if given else "missing, likely present",
                       "suspicion": round(suspicion, 4), "fold": row["fold"],
                       "tfidf_agrees": (label in row["predicted"].get(TFIDF, [])) != given})
    return result


def markdown(suspects: list[dict], rows: list[dict], labels, top: int) -> str:
    lines = ["# Label audit: likely annotation errors", "",
             f"{len(rows)} annotated sentences, each scored by a model that did not train on it; confident "
             "learning (cleanlab) flags the labels that disagree with it. `tfidf`: whether TF-IDF's out-of-fold "
             "labels side with the audit.", "",
             "| label | sentences with it | suspects | given, likely absent | missing, likely present |",
             "|---|---|---|---|---|"]
    for label in labels:
        mine = [s for s in suspects if s["suspect_label"] == label]
        given = sum(s["suspected"].startswith("given") for s in mine)
        lines.append(f"| {label} | {sum(label in r['labels'] for r in rows)} | {len(mine)} | {given} | {len(mine) - given} |")
    for label in labels:
        lines += ["", f"## {label}: top {top}", "", "| suspicion | suspected | task | given labels | score | tfidf | text |",
                  "|---|---|---|---|---|---|---|"]
        for s in [s for s in suspects if s["suspect_label"] == label][:top]:
            text = s["text"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {s['suspicion']:.3f} | {s['suspected']} | {Path(s['file']).name}#{s['task_id']} "
                         f"| {', '.join(s['labels']) or 'none'} | {s['scores'][label]:.3f} "
                         f"| {'yes' if s['tfidf_agrees'] else 'no'} | {text} |")
    return "\n".join(lines) + "\n"


def audit(config, output_dir: Path, crossval_dir: Path, folds: int = 5, outlet_folds=None,
          top: int = 25) -> tuple[list[dict], list[dict]]:
    """Rank the suspects, write suspects.jsonl and audit.md into output_dir; returns (the
    out-of-fold rows, the suspects)."""
    data = load_data(config)
    labels = data.schema.labels
    rows = out_of_fold(config, data, crossval_dir, folds, outlet_folds)
    gold, scores = as_arrays(rows, labels)
    suspects = suspect_rows(rows, labels, rank_suspects(gold, scores), task_details(config.data_files))
    write_text_atomic(output_dir / "suspects.jsonl",
                      "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in suspects))
    write_text_atomic(output_dir / "audit.md", markdown(suspects, rows, labels, top))
    for k, label in enumerate(labels):
        log.info("%s: %d suspects among %d sentences (%d carry it)", label,
                 sum(s["suspect_label"] == label for s in suspects), len(rows), int(gold[:, k].sum()))
    return rows, suspects


def push(options, suspects: list[dict], data_files) -> None:
    from labelstudio.client import connect
    from labelstudio.review import push_review_tab

    if not options.url or options.label_studio_project is None:
        raise UserError("--push needs the project: --project ID, and --url or LABEL_STUDIO_URL")
    files = [str(path) for path in options.push_files or data_files]
    if len(files) > 1 and not options.push_files:
        raise UserError("--push with several data files: name the ones exported from that project with --push_files")
    task_ids = [s["task_id"] for s in suspects if s["file"] in files]
    push_review_tab(connect(options.url, options.api_key), options.url, options.label_studio_project, task_ids)


def main(argv: list[str]) -> None:
    parser = config_parser("python -m eval.audit", __doc__)
    add_fold_options(parser)
    parser.add_argument(*spellings(["--crossval_dir"]), type=Path,
                        help="An eval.crossval output folder of the same data and options (default: OUTPUT_DIR/crossval).")
    parser.add_argument(*spellings(["--top"]), type=int, default=25, help="Suspects per label in audit.md (default 25).")
    parser.add_argument(*spellings(["--push"]), action="store_true", help="Send the suspects to Label Studio as a review tab.")
    parser.add_argument(*spellings(["--url"]), default=os.environ.get("LABEL_STUDIO_URL"),
                        help="Label Studio address (default: $LABEL_STUDIO_URL).")
    parser.add_argument(*spellings(["--api_key"]), default=os.environ.get("LABEL_STUDIO_API_KEY"),
                        help="Personal access token (default: $LABEL_STUDIO_API_KEY).")
    # dest: TrainingArguments has a `project` of its own (trackio's), which this --project replaces here.
    parser.add_argument(*spellings(["--project"]), dest="label_studio_project", type=int,
                        help="The project the export came from (with --push).")
    parser.add_argument(*spellings(["--push_files"]), nargs="+", help="With several data files: those exported from --project.")
    config, options = parse_config(argv, parser)
    output_dir = Path(config.output_dir)
    _, suspects = audit(config, output_dir, options.crossval_dir or output_dir / "crossval", options.folds,
                        options.outlet_folds, options.top)
    if options.push:
        push(options, suspects, config.data_files)
    sys.stdout.write((output_dir / "audit.md").read_text())
    print(f"\nwrote {output_dir / 'suspects.jsonl'} ({len(suspects)} suspects)")


if __name__ == "__main__":
    run_command(main)
