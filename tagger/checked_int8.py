"""int8 scores, with each label checked against fp32 where int8 might decide it differently.

int8 weights and activations move a logit by up to 1-2 (MiniLM-L6 on the corpus; 99% of moves
are under 0.55), so about one sentence in 400 gets another label than fp32 gives it. A label's
decision can only differ when its int8 logit lies within that distance of the label's threshold:
so a sentence is scored again in fp32 when any label's int8 logit is within the label's margin
of its threshold (and, for a single-choice control, when two labels are near the top). The
margins are measured once, when the model is trained: its own sentences (validation first) are
scored both ways, and each label's margin is SAFETY times the 99th percentile of the moves seen
(the largest move is an outlier's: twice it rescored 11% of the corpus). They are stored in the
model folder with the hash of the weights they were measured on, so that a sentence's answer
never depends on what was scored before it, nor on who scored it first.
"""

import json
from pathlib import Path

import numpy as np

from tagger.artifacts import write_json

MARGINS_FILE = "int8_margins.json"
SENTENCES = 512  # sentences scored both ways to set the margins, where the model has as many
QUANTILE, SAFETY = 99, 2.0  # margin = SAFETY x the 99th percentile of int8's moves among them (docs/performance.md)


class CheckedInt8:
    """Checks int8 logits, scoring again in fp32 the sentences whose labels are in doubt. Those
    are gathered over a whole call and scored in batches of their own: rescoring a few rows of
    each batch as it came was slower (163 against 181 sentences/s, docs/performance.md)."""

    def __init__(self, fp32, thresholds: dict[str, float], margins: np.ndarray, single_choice: bool = False):
        self.fp32, self.margins, self.single_choice = fp32, margins, single_choice
        probabilities = np.clip(np.array(list(thresholds.values()), dtype=np.float64), 1e-12, 1 - 1e-12)
        self.threshold_logits = np.log(probabilities / (1 - probabilities))
        self.rescored = self.scored = 0  # sentences scored again in fp32, sentences scored

    def check(self, logits: np.ndarray, rescore) -> np.ndarray:
        """int8's logits of some sentences, with fp32's (`rescore(rows)`) where labels are in doubt."""
        self.scored += len(logits)
        doubts = np.flatnonzero(self.unsure(logits))
        if len(doubts):
            logits[doubts] = rescore(doubts)
        self.rescored += len(doubts)
        return logits

    def unsure(self, logits: np.ndarray) -> np.ndarray:
        """Rows where fp32 might choose other labels than int8 does."""
        unsure = (np.abs(logits - self.threshold_logits) < self.margins).any(axis=1)
        if self.single_choice:  # the highest-scoring label over its threshold: two candidates may swap
            unsure |= (logits > self.threshold_logits - self.margins).sum(axis=1) >= 2
        return unsure


def write_margins(model_dir: Path, moves: np.ndarray, weights: str, measured_on: str) -> None:
    """moves: |int8 - fp32| logits of the model's sentences (rows) per label; weights: the digest
    of the weights they were measured on."""
    write_json(Path(model_dir) / MARGINS_FILE, {
        "margins": (SAFETY * np.percentile(moves, QUANTILE, axis=0)).tolist(), "weights": weights,
        "sentences": len(moves), "measured_on": measured_on, "quantile": QUANTILE, "safety": SAFETY,
        "largest_moves": moves.max(axis=0).tolist()})


def read_margins(model_dir: Path, labels: int, weights: str) -> np.ndarray | None:
    """The model folder's margins, if measured by these rules on these weights (else None)."""
    path = Path(model_dir) / MARGINS_FILE
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        margins = np.array(stored["margins"], dtype=np.float64)
        rules = (stored["weights"] == weights, stored["quantile"] == QUANTILE, stored["safety"] == SAFETY)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return margins if all(rules) and margins.shape == (labels,) else None
