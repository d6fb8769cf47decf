"""python -m eval.report --model DIR [--output_dir DIR]

The whole harness on a trained model's own held-out test split (rebuilt from its saved split seed and
fractions): the model and the baselines side by side, per-class metrics with bootstrap 95%
intervals, PR curves with the chosen thresholds, TP/FP/FN per class, label co-occurrence,
per-outlet scores, where the model and TF-IDF disagree, and a file of the model's errors, worst
first. Writes report.md, metrics.json, errors.jsonl, disagreements.jsonl and PNG plots (default:
MODEL-outputs/report/, beside the model folder).
"""

import json
from pathlib import Path

import numpy as np

from eval import plots
from eval.baselines import BASELINES, TfidfLogistic, test_predictions
from tagger.artifacts import atomic_file, trained_options, write_json, write_text_atomic
from tagger.cli import (ArgumentParser, add_model_option, add_output_dir_option, default_output_dir,
                        run_command)
from tagger.metrics import AVERAGES, apply_thresholds, evaluation, report
from tagger.predictor import Tagger
from train.run import splits_as_trained


def bootstrap_f1(gold, predicted, labels, rounds: int = 1000, seed: int = 0) -> dict[str, list[float]]:
    """95% percentile interval of each class's F1 (and macro-F1) over resampled sentences."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(gold), size=(rounds, len(gold)))
    g, p = gold[rows].astype(bool), predicted[rows].astype(bool)
    tp, fp, fn = (g & p).sum(1), (~g & p).sum(1), (g & ~p).sum(1)
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    intervals = {label: np.percentile(f1[:, i], [2.5, 97.5]).tolist() for i, label in enumerate(labels)}
    intervals["macro"] = np.percentile(f1.mean(1), [2.5, 97.5]).tolist()
    return intervals


def counts(gold, predicted, labels) -> dict:
    g, p = gold.astype(bool), predicted.astype(bool)
    return {label: {"tp": int((g & p)[:, i].sum()), "fp": int((~g & p)[:, i].sum()),
                    "fn": int((g & ~p)[:, i].sum())} for i, label in enumerate(labels)}


def co_occurrence(gold) -> list[list[int]]:
    g = gold.astype(int)
    return (g.T @ g).tolist()


def by_outlet(gold, predicted, outlets, labels) -> dict:
    result = {}
    for outlet in sorted(set(outlets)):
        rows = np.array([o == outlet for o in outlets])
        scores = report(gold[rows], predicted[rows], labels)
        result[outlet or "unknown"] = {"sentences": int(rows.sum()), "macro_f1": scores["macro"]["f1"],
                                       "micro_f1": scores["micro"]["f1"]}
    return result


def errors(texts, gold, scores, thresholds) -> list[dict]:
    """False positives and negatives, the most confidently wrong first."""
    labels, cut = list(thresholds), np.array(list(thresholds.values()))
    predicted = scores >= cut
    wrongness = np.where(predicted != gold.astype(bool), np.abs(scores - cut), 0).max(1)
    rows = []
    for i in np.argsort(-wrongness):
        if wrongness[i] == 0:
            break
        rows.append({"text": texts[i], "gold": [l for l, on in zip(labels, gold[i]) if on],
                     "predicted": [l for l, on in zip(labels, predicted[i]) if on],
                     "false_positives": [l for j, l in enumerate(labels) if predicted[i, j] and not gold[i, j]],
                     "false_negatives": [l for j, l in enumerate(labels) if gold[i, j] and not predicted[i, j]],
                     "scores": {l: round(float(s), 4) for l, s in zip(labels, scores[i])}})
    return rows


def disagreements(texts, gold, model, other, labels) -> tuple[dict, list[dict]]:
    """Per class, where the model and another system (TF-IDF) differ: how often each is right
    where the other is wrong, and those sentences (model and other: 0/1 predictions)."""
    summary, rows = {}, []
    for j, label in enumerate(labels):
        model_right, other_right = model[:, j] == gold[:, j], other[:, j] == gold[:, j]
        summary[label] = {"model_only_right": int((model_right & ~other_right).sum()),
                          "other_only_right": int((~model_right & other_right).sum()),
                          "both_wrong": int((~model_right & ~other_right).sum())}
        rows += [{"label": label, "text": texts[i], "gold": bool(gold[i, j]), "model": bool(model[i, j]),
                  "other": bool(other[i, j])} for i in np.flatnonzero(model_right != other_right)]
    return summary, rows


def baseline_results(splits, gold, labels) -> tuple[dict, dict]:
    """(reports, test predictions) of every baseline, by name."""
    results, predictions = {}, {}
    for baseline_class in BASELINES:
        predictions[baseline_class.name] = predicted = test_predictions(baseline_class, splits, labels)
        results[baseline_class.name] = {**report(gold, predicted, labels), "ci95": bootstrap_f1(gold, predicted, labels)}
    return results, predictions


def build_report(model_dir: Path, output_dir: Path) -> dict:
    splits, _ = splits_as_trained(model_dir)
    test = splits["test"]
    texts, gold, outlets = list(test["text"]), np.array(test["labels"]).astype(int), list(test["outlet"])
    predictor = Tagger(model_dir, mode="fp32")  # the figures of the run itself
    labels = predictor.schema.labels
    scores = predictor.scores(texts)
    predicted = apply_thresholds(scores, predictor.thresholds)
    model = {**report(gold, predicted, labels), "ci95": bootstrap_f1(gold, predicted, labels)}
    baselines, baseline_predictions = baseline_results(splits, gold, labels)
    versus_tfidf, disagreeing = disagreements(texts, gold, predicted, baseline_predictions[TfidfLogistic.name], labels)
    results = evaluation(model_dir, trained_options(model_dir)["data_files"],
                         {"test": (len(texts), {"model": model, **baselines})},
                         labels=list(labels), thresholds=predictor.thresholds, counts=counts(gold, predicted, labels),
                         co_occurrence=co_occurrence(gold), by_outlet=by_outlet(gold, predicted, outlets, labels),
                         versus_tfidf=versus_tfidf)
    output_dir.mkdir(parents=True, exist_ok=True)
    plots.pr_curves(gold, scores, predictor.thresholds, output_dir / "pr_curves.png")
    plots.co_occurrence(np.array(results["co_occurrence"]), labels, output_dir / "co_occurrence.png")
    with atomic_file(output_dir / "errors.jsonl") as handle:
        for row in errors(texts, gold, scores, predictor.thresholds):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    with atomic_file(output_dir / "disagreements.jsonl") as handle:
        for row in disagreeing:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    write_json(output_dir / "metrics.json", results)
    write_text_atomic(output_dir / "report.md", markdown(results))
    return results


def markdown(results: dict) -> str:
    test, labels = results["splits"]["test"], results["labels"]
    systems = test["systems"]
    tfidf = systems["TF-IDF + logistic regression"]
    lines = [f"# Evaluation report: `{results['model']}`", "",
             f"Held-out test split: {test['sentences']} sentences from articles unseen in training "
             "and validation; thresholds chosen on validation only. Brackets: bootstrap 95% intervals.", "",
             "## Model and baselines (F1)", "",
             "| system | " + " | ".join(labels) + " | macro-F1 | micro-F1 |",
             "|---|" + "---|" * (len(labels) + 2)]
    for name, result in systems.items():
        cells = [f"{result['per_class'][l]['f1']:.3f}" for l in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {result['macro']['f1']:.3f} | {result['micro']['f1']:.3f} |")
    margins = [systems["model"]["per_class"][l]["f1"] - tfidf["per_class"][l]["f1"] for l in labels]
    lines.append("| margin over TF-IDF | " + " | ".join(f"{m:+.3f}" for m in margins)
                 + f" | {systems['model']['macro']['f1'] - tfidf['macro']['f1']:+.3f} | |")
    model = systems["model"]
    lines += ["", "## Model, per class", "",
              "| label | precision | recall | F1 [95% CI] | support | threshold | TP | FP | FN |",
              "|---|---|---|---|---|---|---|---|---|"]
    for l in labels:
        s, c, (lo, hi) = model["per_class"][l], results["counts"][l], model["ci95"][l]
        lines.append(f"| {l} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} [{lo:.3f}, {hi:.3f}] "
                     f"| {s['support']} | {results['thresholds'][l]:.3f} | {c['tp']} | {c['fp']} | {c['fn']} |")
    lo, hi = model["ci95"]["macro"]
    lines += ["", " | ".join(f"{a} avg F1 {model[a]['f1']:.3f}" for a in AVERAGES)
              + f" (macro 95% CI [{lo:.3f}, {hi:.3f}]; samples: per sentence, where a sentence rightly "
              "left without events scores 1)", "",
              "![PR curves](pr_curves.png)", "",
              "## Label co-occurrence (gold, test)", "", "![co-occurrence](co_occurrence.png)", "",
              "## By outlet (model)", "", "| outlet | sentences | macro-F1 | micro-F1 |", "|---|---|---|---|"]
    for outlet, r in results["by_outlet"].items():
        lines.append(f"| {outlet} | {r['sentences']} | {r['macro_f1']:.3f} | {r['micro_f1']:.3f} |")
    lines += ["", "Small outlets give wide intervals: read their rows as anecdotes.", "",
              "## Model against TF-IDF, per sentence", "",
              "Where one system is right on a label and the other is wrong (`disagreements.jsonl`, one row "
              "per sentence and label; `other` is TF-IDF).", "",
              "| label | model right, TF-IDF wrong | TF-IDF right, model wrong | both wrong |", "|---|---|---|---|"]
    for label, c in results["versus_tfidf"].items():
        lines.append(f"| {label} | {c['model_only_right']} | {c['other_only_right']} | {c['both_wrong']} |")
    lines += ["", "Errors, most confidently wrong first: `errors.jsonl`.", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = ArgumentParser("python -m eval.report", __doc__)
    add_model_option(parser)
    add_output_dir_option(parser, "MODEL-outputs/report")
    args = parser.parse_args(argv)
    output_dir = args.output_dir or default_output_dir(args.model, "report")
    build_report(args.model, output_dir)
    print((output_dir / "report.md").read_text())


if __name__ == "__main__":
    run_command(main)
