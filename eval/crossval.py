"""python -m eval.crossval --config configs/news.yaml [--folds 5] [--output_dir models/cv] [training options]

k-fold cross-validation grouped by article: k models, each tested on articles that none of
the others' test parts hold, with TF-IDF + logistic regression scored on the same folds. Prints
mean and spread of each class's F1 and writes metrics.json (each fold's test part as a split, and
the summary) and crossval.md in output_dir.
A test split of a few hundred sentences is noisy; k of them say how noisy.
"""

import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

from eval.baselines import TfidfLogistic, test_predictions
from tagger.annotations import read_exports
from tagger.artifacts import write_json, write_text_atomic
from tagger.cli import run_command
from tagger.labels import LABELS
from tagger.metrics import apply_thresholds, evaluation, report
from tagger.predictor import Tagger
from train.config import config_parser, parse_config
from train.run import train_on
from train.splits import cross_validation_splits

log = logging.getLogger(__name__)


def fold_scores(model_dir: Path, splits) -> dict[str, dict]:
    """Test-fold report of the fine-tuned model and of TF-IDF (thresholds from validation)."""
    gold = np.array(splits["test"]["labels"])
    predictor = Tagger(model_dir)
    model = report(gold, apply_thresholds(predictor.scores(list(splits["test"]["text"])), predictor.thresholds))
    return {"model": model, TfidfLogistic.name: report(gold, test_predictions(TfidfLogistic, splits))}


def summarise(folds: list[dict]) -> dict:
    """Mean and standard deviation over folds of each system's per-class and macro F1."""
    result = {}
    for system in folds[0]:
        f1 = {label: [fold[system]["per_class"][label]["f1"] for fold in folds] for label in LABELS}
        f1["macro"] = [fold[system]["macro"]["f1"] for fold in folds]
        result[system] = {name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": v}
                          for name, v in f1.items()}
    return result


def markdown(summary: dict, folds: int) -> str:
    lines = [f"# {folds}-fold cross-validation, grouped by article (F1, mean ± std)", "",
             "| system | " + " | ".join(LABELS) + " | macro-F1 |", "|---|" + "---|" * (len(LABELS) + 1)]
    for system, scores in summary.items():
        lines.append(f"| {system} | " + " | ".join(
            f"{scores[name]['mean']:.3f} ± {scores[name]['std']:.3f}" for name in [*LABELS, "macro"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = config_parser("python -m eval.crossval", __doc__)
    parser.add_argument("--folds", type=int, default=5, help="Number of folds (default 5).")
    config, options = parse_config(argv, parser)
    folds = options.folds
    sentences, summary = read_exports(config.data_files, config.tie_break)
    output_dir = Path(config.output_dir)
    results, sizes = [], []
    fold_splits = cross_validation_splits(sentences, folds, config.validation_fraction, config.split_seed)
    for k, splits in enumerate(fold_splits):
        log.info("Fold %d of %d", k + 1, folds)
        fold_config = dataclasses.replace(config, output_dir=str(output_dir / f"fold-{k}"))
        results.append(fold_scores(train_on(fold_config, splits, summary), splits))
        sizes.append(len(splits["test"]))
    aggregated = summarise(results)
    write_json(output_dir / "metrics.json", evaluation(
        output_dir, config.data_files, {f"fold-{k} test": (n, fold) for k, (n, fold) in enumerate(zip(sizes, results))},
        folds=folds, summary=aggregated))
    write_text_atomic(output_dir / "crossval.md", markdown(aggregated, folds))
    sys.stdout.write(markdown(aggregated, folds))


if __name__ == "__main__":
    run_command(main)
