"""Per-class metrics and decision thresholds, all from scikit-learn."""

import numpy as np

AVERAGES = ("micro", "macro", "weighted", "samples")
# A class with fewer validation positives than this keeps the default threshold (tune_thresholds).
MIN_POSITIVES, DEFAULT_THRESHOLD = 3, 0.5


def sigmoid(logits) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64)))


def apply_thresholds(scores, thresholds: dict[str, float]) -> np.ndarray:
    """0/1 per score; `thresholds` maps each label to its threshold in the columns' order (as
    tune_thresholds and thresholds.json give them)."""
    return (np.asarray(scores) >= np.array(list(thresholds.values()))).astype(int)


def report(y_true, y_pred, labels) -> dict:
    """{'per_class': {label: {precision, recall, f1, support}}, 'micro': {...}, 'macro': ...};
    `labels` names the columns."""
    from sklearn.metrics import precision_recall_fscore_support  # here: it takes seconds to load

    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    columns = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    result = {"per_class": {label: scores(*(column[i] for column in columns))
                            for i, label in enumerate(labels)}}
    for average in AVERAGES:
        # Per sentence, "no event" predicted for a sentence with no event is right, not 0/0:
        # most news sentences carry no event, and zero_division=0 would score them all as misses.
        zero_division = 1.0 if average == "samples" else 0.0
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average,
                                                     zero_division=zero_division)
        result[average] = scores(p, r, f, int(y_true.sum()))
    return result


def evaluation(model, data, splits: dict[str, tuple[int, dict[str, dict]]], **extra) -> dict:
    """The one layout of every metrics.json (a training run's, `eval`'s, `eval.report`'s and
    `eval.crossval`'s): {"model", "data", "splits": {split: {"sentences": n, "systems": {system:
    report(...)}}}, ...}, where the trained model is the system "model" and extra keys add to it."""
    return {"model": str(model), "data": [str(f) for f in data],
            "splits": {name: {"sentences": int(n), "systems": systems} for name, (n, systems) in splits.items()},
            **extra}


def scores(precision, recall, f1, support) -> dict:
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(support)}


def tune_thresholds(y_true, scores_, labels, default: float = DEFAULT_THRESHOLD,
                    min_positives: int = MIN_POSITIVES) -> dict[str, float]:
    """Per class (`labels` names the columns), the score threshold with the best F1 on this
    (validation) data.

    A class with fewer than `min_positives` positives here keeps `default`: a threshold fitted
    to one or two sentences says more about them than about the class."""
    from sklearn.metrics import precision_recall_curve

    y_true, scores_ = np.asarray(y_true).astype(int), np.asarray(scores_)
    thresholds = {}
    for i, label in enumerate(labels):
        if y_true[:, i].sum() < min_positives:
            thresholds[label] = default
            continue
        precision, recall, cuts = precision_recall_curve(y_true[:, i], scores_[:, i])
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        best = int(np.argmax(f1[:-1]))  # the last point has no threshold
        # Halfway to the next lower score keeps the rule from sitting exactly on one example.
        lower = scores_[:, i][scores_[:, i] < cuts[best]]
        thresholds[label] = float((cuts[best] + lower.max()) / 2 if lower.size else cuts[best])
    return thresholds


def format_table(result: dict) -> str:
    lines = [f"{'':16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    rows = [*result["per_class"].items(), None, *((f"{a} avg", result[a]) for a in AVERAGES)]
    for row in rows:
        if row is None:
            lines.append("")
            continue
        name, s = row
        lines.append(f"{name:16}{s['precision']:10.3f}{s['recall']:10.3f}{s['f1']:10.3f}{s['support']:10d}")
    return "\n".join(lines)
