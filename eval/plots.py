"""PNG plots for the report (matplotlib, no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from tagger.labels import LABELS  # noqa: E402


def pr_curves(gold, scores, thresholds, path) -> None:
    figure, axes = plt.subplots(1, len(LABELS), figsize=(4 * len(LABELS), 3.6), sharey=True)
    for axis, i, label in zip(axes, range(len(LABELS)), LABELS):
        if gold[:, i].any():
            precision, recall, cuts = precision_recall_curve(gold[:, i], scores[:, i])
            axis.plot(recall, precision)
            chosen = np.searchsorted(cuts, thresholds[label])
            chosen = min(chosen, len(cuts) - 1)
            axis.plot(recall[chosen], precision[chosen], "o", label=f"threshold {thresholds[label]:.2f}")
            axis.legend(loc="lower left")
        axis.set(title=label, xlabel="recall", xlim=(0, 1.02), ylim=(0, 1.02))
    axes[0].set_ylabel("precision")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def co_occurrence(matrix, path) -> None:
    figure, axis = plt.subplots(figsize=(5, 4.2))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(LABELS)), LABELS, rotation=30, ha="right")
    axis.set_yticks(range(len(LABELS)), LABELS)
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, str(value), ha="center", va="center")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
