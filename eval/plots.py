"""PNG plots for the report (matplotlib, no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402


def pr_curves(gold, scores, thresholds, path) -> None:
    """One panel per label (the thresholds' keys, in column order), in rows of at most five."""
    labels = list(thresholds)
    columns = min(len(labels), 5)
    rows = -(-len(labels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.6 * rows), sharey=True, squeeze=False)
    for axis in axes.flat[len(labels):]:
        axis.set_visible(False)
    for axis, i, label in zip(axes.flat, range(len(labels)), labels):
        if gold[:, i].any():
            precision, recall, cuts = precision_recall_curve(gold[:, i], scores[:, i])
            axis.plot(recall, precision)
            chosen = np.searchsorted(cuts, thresholds[label])
            chosen = min(chosen, len(cuts) - 1)
            axis.plot(recall[chosen], precision[chosen], "o", label=f"threshold {thresholds[label]:.2f}")
            axis.legend(loc="lower left")
        axis.set(title=label, xlabel="recall", xlim=(0, 1.02), ylim=(0, 1.02))
    for axis in axes[:, 0]:
        axis.set_ylabel("precision")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def co_occurrence(matrix, labels, path) -> None:
    side = 3 + 0.5 * len(labels)
    figure, axis = plt.subplots(figsize=(side + 0.8, side))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, str(value), ha="center", va="center")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def learning_curve_plot(summary: dict, path) -> None:
    """Macro-F1 against annotated sentences, one line per recipe, bars of one std over draws."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for recipe, by_size in summary.items():
        sizes = [size for size, (mean, _, runs, _) in by_size.items() if runs]
        axis.errorbar(sizes, [by_size[s][0] for s in sizes], yerr=[by_size[s][1] for s in sizes], marker="o",
                      capsize=3, label=recipe)
    axis.set(xscale="log", xlabel="annotated sentences", ylabel="macro-F1 (test articles)", ylim=(0, 1))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
