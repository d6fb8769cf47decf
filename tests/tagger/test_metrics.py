import numpy as np

from tagger.metrics import report, tune_thresholds

COLUMNS = ("withdrawal", "strike", "evacuation", "atrocity_claim")


def test_thresholds_are_tuned_per_class_for_best_f1():
    gold = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    scores = np.array([[0.30, 0.1, 0.1, 0.1], [0.25, 0.2, 0.1, 0.1], [0.22, 0.9, 0.1, 0.1],
                       [0.20, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1]])
    thresholds = tune_thresholds(gold, scores, COLUMNS)
    assert 0.20 < thresholds["withdrawal"] <= 0.22  # all three positives, no negative
    assert thresholds["strike"] == 0.5  # one positive: too few to tune on
    assert thresholds["evacuation"] == 0.5


def test_report_matches_hand_counts():
    gold = [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    pred = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]]
    result = report(gold, pred, COLUMNS)
    assert result["per_class"]["withdrawal"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert result["per_class"]["strike"]["precision"] == 0.5
    assert result["micro"]["f1"] == 2 * (2 / 3 * 2 / 3) / (4 / 3)


def test_a_sentence_rightly_left_without_events_counts_as_right_in_the_samples_average():
    gold = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]]
    pred = [[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]
    # Per sentence F1: 1 (nothing, rightly), 0 (a false event), 2/3 (one of two events found).
    assert report(gold, pred, COLUMNS)["samples"]["f1"] == (1 + 0 + 2 / 3) / 3
