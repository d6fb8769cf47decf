"""int8 scores, with each label checked against fp32 where int8 might decide it differently.

int8 weights and activations move a logit by up to 1-2 (MiniLM-L6 on the corpus; 99% of moves
are under 0.55), so about one sentence in 400 gets another label than fp32 gives it. A label's
decision can only differ when its int8 logit lies within that distance of the label's threshold:
so a sentence is scored again in fp32 when any label's int8 logit is within the label's margin
of its threshold (and, for a single-choice control, when two labels are near the top). The
margins are measured, not guessed: the first CALIBRATION sentences a model scores are scored
both ways (their fp32 scores are the answer), and each label's margin is SAFETY times the 99th
percentile of the moves seen (the largest move is an outlier's: twice it rescored 11% of the corpus).
Cached beside the int8 model, named for the weights.
"""

import json

import numpy as np

from tagger.artifacts import write_json

CALIBRATION = 512  # sentences scored both ways to set the margins
QUANTILE, SAFETY = 99, 2.0  # margin = SAFETY x the 99th percentile of int8's moves among them (docs/performance.md)


class CheckedInt8:
    """Checks int8 logits, scoring again in fp32 the sentences whose labels are in doubt. Those
    are gathered over a whole call and scored in batches of their own: rescoring a few rows of
    each batch as it came was slower (163 against 181 sentences/s, docs/performance.md)."""

    def __init__(self, fp32, thresholds: dict[str, float], margins_path, single_choice: bool = False):
        self.fp32, self.margins_path, self.single_choice = fp32, margins_path, single_choice
        probabilities = np.clip(np.array(list(thresholds.values()), dtype=np.float64), 1e-12, 1 - 1e-12)
        self.threshold_logits = np.log(probabilities / (1 - probabilities))
        self.margins = read_margins(margins_path, len(thresholds))
        self.moves = []  # |int8 - fp32| of the calibration sentences, until there are margins
        self.rescored = self.scored = 0  # sentences scored again in fp32, sentences scored

    def check(self, logits: np.ndarray, rescore) -> np.ndarray:
        """int8's logits of some sentences, with fp32's (`rescore(rows)`) where labels are in doubt."""
        self.scored += len(logits)
        sample = 0
        if self.margins is None:  # these sentences are among the first: they measure the margins
            sample = min(len(logits), CALIBRATION - sum(map(len, self.moves)))
            exact = rescore(np.arange(sample))
            self.calibrate(np.abs(logits[:sample] - exact))
            logits[:sample] = exact
            self.rescored += sample
        if self.margins is not None:
            doubts = sample + np.flatnonzero(self.unsure(logits[sample:]))
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

    def calibrate(self, moves: np.ndarray) -> None:
        self.moves.append(moves)
        moves = np.concatenate(self.moves)
        if len(moves) >= CALIBRATION:
            self.margins = SAFETY * np.percentile(moves, QUANTILE, axis=0)
            write_json(self.margins_path, {"margins": self.margins.tolist(), "sentences": len(moves),
                                           "quantile": QUANTILE, "safety": SAFETY,
                                           "largest_moves": moves.max(axis=0).tolist()})


def read_margins(path, labels: int) -> np.ndarray | None:
    """The cached margins, if measured by these rules for as many labels (else None: measured again)."""
    if not path.is_file():
        return None
    try:
        cached = json.loads(path.read_text())
        margins = np.array(cached["margins"], dtype=np.float64)
        rules = (cached["sentences"] >= CALIBRATION, cached["quantile"] == QUANTILE, cached["safety"] == SAFETY)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return margins if all(rules) and margins.shape == (labels,) else None
