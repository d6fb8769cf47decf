"""python -m eval.crossval --config configs/news.yaml [--folds 5 | --outlet_folds RT bbc ...] [--output_dir models/cv] [training options]

k-fold cross-validation grouped by article: k models, each tested on articles that none of
the others' test parts hold, with TF-IDF + logistic regression scored on the same folds. The
model is scored twice: with thresholds from its validation split, and with cross-fitted
thresholds (tuned on the other folds' out-of-fold scores). Prints mean and spread of each
class's F1, and F1 over all folds' test sentences together with bootstrap intervals. Writes
metrics.json (each fold's test part as a split, the summary, the pooled scores, each fold's
best epoch), crossval.md, out_of_fold.jsonl (each test sentence's scores and labels from the
model that did not see it), and thresholds.json (tuned on every fold's out-of-fold scores, for
a model trained with the same options: `python -m train --thresholds FILE`) in output_dir.
With --resume true, a fold whose folder already holds a model trained with the same options on
the same data is reused, so an interrupted cross-validation goes on where it stopped.
With --outlet_folds, each fold holds out whole outlets instead (generalisation to outlets never
seen); sentences of other outlets that repeat a held-out sentence are left out of that fold.
With --teacher DIR (another cross-validation's folder, same folds), each fold's model is
distilled from DIR's model of that fold. With --validation_fraction 0, each fold trains
num_train_epochs on all but its test part, as a model shipped with `python -m train
--validation_fraction 0 --thresholds FILE` would: the cross-fitted row estimates that model, the
`model` row uses --thresholds, the small recipe's fixed thresholds, or 0.5.
A test split of a few hundred sentences is noisy; k of them say how noisy.
"""

import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np
import yaml

from eval.baselines import TfidfLogistic, test_predictions
from eval.report import bootstrap_f1
from tagger.artifacts import trained_options, write_json, write_text_atomic
from tagger.cli import UserError, run_command, spellings
from tagger.metrics import apply_thresholds, evaluation, report, tune_thresholds
from tagger.predictor import Tagger
from train.config import MACHINE_DEFAULTS, TrainConfig, config_parser, options, parse_config
from train import recipes
from train.data import load_data
from train.run import train_on
from train.splits import cross_validation_splits, fingerprint, make_splits

log = logging.getLogger(__name__)

CROSS_FITTED = "model, cross-fitted thresholds"


def fold_predictions(model_dir: Path, splits) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(test gold labels; the model's test scores; each system's test predictions, thresholds
    from validation)."""
    predictor = Tagger(model_dir, mode="fp32")  # exact scores: thresholds are tuned on them
    scores = predictor.scores(list(splits["test"]["text"]))
    return np.array(splits["test"]["labels"]), scores, {
        "model": apply_thresholds(scores, predictor.thresholds),
        TfidfLogistic.name: test_predictions(TfidfLogistic, splits, predictor.schema.labels)}


def cross_fitted(out_of_fold: list[tuple[np.ndarray, np.ndarray]], labels) -> list[np.ndarray]:
    """Each fold's test predictions with thresholds tuned on the other folds' test scores (each
    from its own model): four times the positives of one validation split, none of them this fold's."""
    predictions = []
    for k, (gold, scores) in enumerate(out_of_fold):
        others = [fold for i, fold in enumerate(out_of_fold) if i != k]
        thresholds = tune_thresholds(np.concatenate([g for g, _ in others]), np.concatenate([s for _, s in others]),
                                     labels)
        predictions.append(apply_thresholds(scores, thresholds))
    return predictions


def pooled(gold: list[np.ndarray], predictions: list[dict[str, np.ndarray]], labels) -> dict[str, dict]:
    """Each system's F1 over every fold's test sentences together (each sentence once), with
    bootstrap 95% intervals: one interval per class instead of a spread of k small samples."""
    gold = np.concatenate(gold)
    result = {}
    for system in predictions[0]:
        predicted = np.concatenate([fold[system] for fold in predictions])
        result[system] = {**report(gold, predicted, labels), "ci95": bootstrap_f1(gold, predicted, labels)}
    return result


def fold_model(config, splits, data) -> Path:
    """Train the fold; with --resume, take the model an earlier run left in its folder if it
    was trained with the same options on the same data."""
    output_dir = Path(config.output_dir)
    if config.resume and same_run(output_dir, config, splits):
        log.info("Reusing %s: trained with the same options on the same data", output_dir)
        return output_dir
    return train_on(config, splits, data)


def fixed_thresholds(output_dir: Path, labels) -> Path:
    """0.5 for every class, for folds trained without a validation split to tune on: their
    `model` row uses it; the cross-fitted row is the estimate for such a model."""
    path = output_dir / "fixed-thresholds.json"
    write_json(path, dict.fromkeys(labels, 0.5))
    return path


def fold_teacher(teacher: str, k: int, splits) -> str:
    """Fold k's model of the teacher's cross-validation: trained on the same training part, so
    the student's test part stays unseen by both."""
    if not teacher:
        return ""
    model_dir = Path(teacher) / f"fold-{k}"
    run_info = model_dir / "run_info.json"
    if not run_info.is_file():
        raise UserError(f"{model_dir}: no trained fold here; --teacher takes an eval.crossval output folder")
    if json.loads(run_info.read_text()).get("data_fingerprint") != fingerprint(splits):
        raise UserError(f"{model_dir}: trained on other splits than fold {k} here; run the teacher's "
                        "cross-validation with the same data files, --folds or --outlet_folds, and split_seed")
    return str(model_dir)


def out_of_fold_rows(k: int, splits, scores: np.ndarray, predictions: dict[str, np.ndarray], schema) -> list[dict]:
    """One row per test sentence of fold k, with each system's labels: for error analysis and
    for comparing models sentence by sentence."""
    test, names = splits["test"], schema.names
    return [{"fold": k, "task": test["task"][i], "outlet": test["outlet"][i], "text": test["text"][i],
             "labels": names(test["labels"][i]),
             "scores": {label: round(float(score), 4) for label, score in zip(schema.labels, scores[i])},
             "predicted": {system: names(predicted[i]) for system, predicted in predictions.items()}}
            for i in range(len(test))]


def same_run(model_dir: Path, config, splits) -> bool:
    if not (model_dir / "model.safetensors").is_file() or not (model_dir / "run_info.json").is_file():
        return False
    # Where the model goes, the machine's defaults and int8 margins do not change what it learns,
    # nor does keep_options once the recipe is resolved (the options it kept are there).
    ignored = ("output_dir", "resume", "overwrite_output_dir", "int8_margins", "keep_options", *MACHINE_DEFAULTS)
    wanted = yaml.safe_load(yaml.safe_dump(options(config)))
    # train_config.yaml lists the Trainer's options that differ from their defaults, and options
    # added since then ran at their default.
    trained = yaml.safe_load(yaml.safe_dump(options(TrainConfig()))) | trained_options(model_dir)
    same_options = all(trained.get(key) == value for key, value in wanted.items() if key not in ignored)
    run_info = json.loads((model_dir / "run_info.json").read_text())
    return same_options and run_info.get("data_fingerprint") == fingerprint(splits)


def summarise(folds: list[dict], labels) -> dict:
    """Mean and standard deviation over folds of each system's per-class and macro F1."""
    result = {}
    for system in folds[0]:
        f1 = {label: [fold[system]["per_class"][label]["f1"] for fold in folds] for label in labels}
        f1["macro"] = [fold[system]["macro"]["f1"] for fold in folds]
        result[system] = {name: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": v}
                          for name, v in f1.items()}
    return result


def markdown(summary: dict, title: str, labels) -> str:
    lines = [f"# {title} (F1, mean ± std over folds)", "",
             "| system | " + " | ".join(labels) + " | macro-F1 |", "|---|" + "---|" * (len(labels) + 1)]
    for system, scores in summary.items():
        lines.append(f"| {system} | " + " | ".join(
            f"{scores[name]['mean']:.3f} ± {scores[name]['std']:.3f}" for name in [*labels, "macro"]) + " |")
    return "\n".join(lines) + "\n"


def pooled_markdown(overall: dict, labels) -> str:
    lines = ["# Every fold's test sentences together (F1 [bootstrap 95% interval])", "",
             "| system | " + " | ".join(labels) + " | macro-F1 |", "|---|" + "---|" * (len(labels) + 1)]
    for system, result in overall.items():
        f1 = {**{label: result["per_class"][label]["f1"] for label in labels}, "macro": result["macro"]["f1"]}
        lines.append(f"| {system} | " + " | ".join(
            f"{f1[name]:.3f} [{result['ci95'][name][0]:.2f}, {result['ci95'][name][1]:.2f}]"
            for name in [*labels, "macro"]) + " |")
    return "\n".join(lines) + "\n"


def epochs_markdown(epochs: list) -> str:
    """The epoch each fold's model was best at, for training a model without validation."""
    if None in epochs:
        return ""
    return (f"\nBest epoch per fold: {', '.join(f'{e:g}' for e in epochs)} (median {np.median(epochs):g}). "
            "For a model trained on train and validation together: `python -m train --validation_fraction 0 "
            "--num_train_epochs N --thresholds THIS_FOLDER/thresholds.json`, with the other options of this run.\n")


def fold_splits_of(config, data, folds: int, outlet_folds) -> list:
    """Each fold's train/validation/test splits: by article, or one fold per group of outlets."""
    if outlet_folds:
        return [make_splits(data.sentences, data.schema, config.validation_fraction, config.test_fraction,
                            config.split_seed, outlets.split(",")) for outlets in outlet_folds]
    return list(cross_validation_splits(data.sentences, data.schema, folds, config.validation_fraction,
                                        config.split_seed))


def cross_validate(config, folds: int = 5, outlet_folds=None) -> str:
    """Train and score every fold (reusing finished ones with --resume), write the output files
    into config.output_dir, and return crossval.md's text."""
    data = load_data(config)
    config, why = recipes.resolve(config, len(data.sentences))  # what `python -m train` would use on this data
    log.info("Recipe %s: %s", config.recipe, why)
    labels, all_splits = data.schema.labels, fold_splits_of(config, data, folds, outlet_folds)
    folds, output_dir = len(all_splits), Path(config.output_dir)
    if config.validation_fraction == 0 and not (config.thresholds or config.fixed_threshold):
        config = dataclasses.replace(config, thresholds=str(fixed_thresholds(output_dir, labels)))
    out_of_fold, predictions, rows = [], [], []
    for k, splits in enumerate(all_splits):
        log.info("Fold %d of %d", k + 1, folds)
        fold_config = dataclasses.replace(config, output_dir=str(output_dir / f"fold-{k}"), int8_margins=False,
                                          teacher=fold_teacher(config.teacher, k, splits))  # folds score in fp32
        gold, scores, predicted = fold_predictions(fold_model(fold_config, splits, data), splits)
        out_of_fold.append((gold, scores))
        predictions.append(predicted)
    for k, (predicted, fitted) in enumerate(zip(predictions, cross_fitted(out_of_fold, labels))):
        predicted[CROSS_FITTED] = fitted
        rows += out_of_fold_rows(k, all_splits[k], out_of_fold[k][1], predicted, data.schema)
    results = [{system: report(gold, predicted[system], labels) for system in predicted}
               for (gold, _), predicted in zip(out_of_fold, predictions)]
    aggregated = summarise(results, labels)
    overall = pooled([gold for gold, _ in out_of_fold], predictions, labels)
    epochs = [json.loads((output_dir / f"fold-{k}" / "run_info.json").read_text()).get("best_epoch")
              for k in range(folds)]
    # For a model trained with these options on all the data: `python -m train --thresholds FILE`.
    thresholds = tune_thresholds(np.concatenate([g for g, _ in out_of_fold]),
                                 np.concatenate([s for _, s in out_of_fold]), labels)
    write_json(output_dir / "thresholds.json", thresholds)
    write_text_atomic(output_dir / "out_of_fold.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    write_json(output_dir / "metrics.json", evaluation(
        output_dir, config.data_files,
        {f"fold-{k} test": (len(gold), fold) for k, ((gold, _), fold) in enumerate(zip(out_of_fold, results))},
        labels=list(labels), folds=folds, summary=aggregated, pooled=overall, cross_fitted_thresholds=thresholds,
        best_epochs=epochs))
    title = (f"Leave outlets out ({', '.join(outlet_folds)})" if outlet_folds
             else f"{folds}-fold cross-validation, grouped by article")
    text = markdown(aggregated, title, labels) + "\n" + pooled_markdown(overall, labels) + epochs_markdown(epochs)
    write_text_atomic(output_dir / "crossval.md", text)
    return text


def add_fold_options(parser) -> None:
    parser.add_argument("--folds", type=int, default=5, help="Number of folds (default 5).")
    parser.add_argument(*spellings(["--outlet_folds"]), nargs="+", metavar="OUTLET[,OUTLET...]",
                        help="Leave outlets out instead: one fold per argument, whose test part is every "
                             "sentence of those outlets (data.source), e.g. RT bbc DailyMail,Express.")


def main(argv: list[str]) -> None:
    parser = config_parser("python -m eval.crossval", __doc__)
    add_fold_options(parser)
    config, options = parse_config(argv, parser)
    sys.stdout.write(cross_validate(config, options.folds, options.outlet_folds))


if __name__ == "__main__":
    run_command(main)
