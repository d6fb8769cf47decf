"""python -m eval.audit_flips --config CONFIG [--data_files EXPORT...] [--positives 0.03] [--negatives 0.01] [--flip_seed 0] [--folds 5] --output_dir DIR

How well the label audit finds errors, measured on errors made on purpose: copies of the exports
with labels flipped (per label, a share of the sentences that carry it lose it and a share of those
without it gain it, drawn with --flip_seed; every annotation of a flipped task is changed alike), audited
as `python -m eval.audit` would (cross-validation into DIR/crossval), then precision and recall of the
audit at finding the flips, per label, next to a simple baseline that flags every pair whose
out-of-fold score is on the other side of 0.5 from the given label. Writes DIR/data/ (the copies),
DIR/flips.json, DIR/audit/ (the audit's own files) and DIR/flips.md.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from eval.audit import as_arrays, audit, baseline_suspects
from eval.crossval import add_fold_options
from tagger.annotations import load_task_list, task_id
from tagger.artifacts import write_json, write_text_atomic
from tagger.cli import run_command, spellings
from tagger.labels import LabelSchema
from train.config import config_parser, parse_config
from train.data import load_data


def draw_flips(sentences, schema: LabelSchema, positives: float, negatives: float, seed: int) -> list[tuple[str, str]]:
    """(task reference, label) pairs to flip: per label, `positives` of the sentences carrying it and
    `negatives` of those without it."""
    rng, flips = np.random.default_rng(seed), []
    for label in schema.labels:
        carrying = [s.task for s in sentences if label in s.labels]
        lacking = [s.task for s in sentences if label not in s.labels]
        for pool, share in ((carrying, positives), (lacking, negatives)):
            flips += [(task, label) for task in rng.choice(pool, size=round(share * len(pool)), replace=False)]
    return flips


def flipped_copy(path: Path, flips: set[tuple[str, str]], schema: LabelSchema, output: Path) -> None:
    """The export with each flipped label toggled in every annotation of its task."""
    tasks = load_task_list(path)
    for position, task in enumerate(tasks):
        labels = {label for ref, label in flips if ref == f"{path}#{task_id(task, position)}"}
        for annotation in (task.get("annotations") or []) if labels else []:
            chosen = {c for region in annotation["result"] for c in region["value"]["choices"]} ^ labels
            annotation["result"] = [{"from_name": schema.from_name, "to_name": schema.to_name, "type": "choices",
                                     "value": {"choices": [l for l in schema.labels if l in chosen]}}] if chosen else []
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(tasks, ensure_ascii=False))


def precision_recall(flagged: set, flips: set, labels) -> dict[str, dict]:
    result = {}
    for label in labels:
        mine, true = {p for p in flagged if p[1] == label}, {p for p in flips if p[1] == label}
        hits = len(mine & true)
        result[label] = {"flips": len(true), "flagged": len(mine), "found": hits,
                         "precision": hits / len(mine) if mine else 0.0, "recall": hits / len(true) if true else 0.0}
    return result


def markdown(results: dict, labels) -> str:
    lines = ["| label | flips | audit: flagged | precision | recall | baseline: flagged | precision | recall |",
             "|---|---|---|---|---|---|---|---|"]
    for label in labels:
        a, b = results["audit"][label], results["baseline"][label]
        lines.append(f"| {label} | {a['flips']} | {a['flagged']} | {a['precision']:.2f} | {a['recall']:.2f} "
                     f"| {b['flagged']} | {b['precision']:.2f} | {b['recall']:.2f} |")
    return "\n".join(lines) + "\n"


def measure(config, output_dir: Path, positives: float, negatives: float, seed: int, folds: int) -> dict:
    original = load_data(config)
    schema, sentences = original.schema, original.sentences
    flips = draw_flips(sentences, schema, positives, negatives, seed)
    copy_of = {str(Path(path)): output_dir / "data" / Path(path).name for path in config.data_files}
    for path, copy in copy_of.items():
        flipped_copy(Path(path), set(flips), schema, copy)
    # The flips under the copies' task references ('FILE#ID'), as the audit names tasks.
    flips = {(f"{copy_of[ref.rsplit('#', 1)[0]]}#{ref.rsplit('#', 1)[1]}", label) for ref, label in flips}
    write_json(output_dir / "flips.json", sorted(flips))
    config = dataclasses.replace(config, data_files=[str(copy) for copy in copy_of.values()])
    rows, suspects = audit(config, output_dir / "audit", output_dir / "crossval", folds)
    flagged = {(s["task"], s["suspect_label"]) for s in suspects}
    gold, scores = as_arrays(rows, schema.labels)
    baseline = {(rows[i]["task"], schema.labels[k]) for i, k, _ in baseline_suspects(gold, scores)}
    results = {"positives": positives, "negatives": negatives, "seed": seed, "sentences": len(rows),
               "audit": precision_recall(flagged, flips, schema.labels),
               "baseline": precision_recall(baseline, flips, schema.labels)}
    write_json(output_dir / "flips_results.json", results)
    write_text_atomic(output_dir / "flips.md", markdown(results, schema.labels))
    return results


def main(argv: list[str]) -> None:
    parser = config_parser("python -m eval.audit_flips", __doc__)
    add_fold_options(parser)
    parser.add_argument(*spellings(["--positives"]), type=float, default=0.03,
                        help="Share of each label's sentences that lose it (default 0.03).")
    parser.add_argument(*spellings(["--negatives"]), type=float, default=0.01,
                        help="Share of the sentences without a label that gain it (default 0.01).")
    parser.add_argument(*spellings(["--flip_seed"]), type=int, default=0, help="Seed of the flips drawn (default 0).")
    config, options = parse_config(argv, parser)
    output_dir = Path(config.output_dir)
    measure(config, output_dir, options.positives, options.negatives, options.flip_seed, options.folds)
    sys.stdout.write((output_dir / "flips.md").read_text())


if __name__ == "__main__":
    run_command(main)
