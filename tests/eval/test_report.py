import numpy as np

from eval.baselines import KeywordRules, TfidfLogistic
from eval.report import bootstrap_f1, co_occurrence, counts, disagreements, errors
from conftest import LABELS


def test_bootstrap_interval_is_a_point_when_predictions_are_perfect():
    gold = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 1, 0]] * 10)
    intervals = bootstrap_f1(gold, gold, LABELS, rounds=200)
    assert intervals["withdrawal"] == [1.0, 1.0]


def test_bootstrap_interval_brackets_a_noisy_f1():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, size=(300, 4))
    predicted = np.where(rng.random((300, 4)) < 0.8, gold, 1 - gold)
    low, high = bootstrap_f1(gold, predicted, LABELS, rounds=300)["strike"]
    assert low < 0.8 < high and high - low < 0.2


def test_counts_and_co_occurrence():
    gold = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])
    predicted = np.array([[1, 0, 0, 0], [0, 0, 1, 0]])
    assert counts(gold, predicted, LABELS)["withdrawal"] == {"tp": 1, "fp": 0, "fn": 1}
    assert counts(gold, predicted, LABELS)["evacuation"] == {"tp": 0, "fp": 1, "fn": 0}
    assert co_occurrence(gold)[0][:2] == [2, 1]


def test_errors_come_most_confidently_wrong_first():
    gold = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    scores = np.array([[0.45, 0, 0, 0], [0.99, 0, 0, 0], [0, 0.9, 0, 0]])
    rows = errors(["a", "b", "c"], gold, scores, dict.fromkeys(LABELS, 0.5))
    assert [r["text"] for r in rows] == ["b", "a"]
    assert rows[0]["false_positives"] == ["withdrawal"] and rows[1]["false_negatives"] == ["withdrawal"]


def test_baselines_learn_the_obvious():
    texts = ["missile hit the depot", "troops withdrew east", "buses evacuated residents", "a quiet day"] * 5
    labels = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]] * 5
    assert KeywordRules(LABELS).fit(texts, labels).scores(["Rocket strikes on Kyiv"]).tolist() == [[0, 1, 0, 0]]
    scores = TfidfLogistic(LABELS).fit(texts, labels).scores(["the missile hit"])
    assert scores.argmax() == 1


def test_disagreements_count_where_one_system_is_right_and_the_other_wrong():
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 2, size=(200, 4))
    model = np.where(rng.random((200, 4)) < 0.85, gold, 1 - gold)
    other = np.where(rng.random((200, 4)) < 0.7, gold, 1 - gold)
    summary, rows = disagreements([f"s{i}" for i in range(200)], gold, model, other, LABELS)
    for j, label in enumerate(LABELS):
        c = summary[label]
        # The difference in sentences right is exactly the difference in accuracy.
        assert c["model_only_right"] - c["other_only_right"] == ((model == gold)[:, j].sum() - (other == gold)[:, j].sum())
        assert c["both_wrong"] == ((model != gold) & (other != gold))[:, j].sum()
        mine = [r for r in rows if r["label"] == label]
        assert len(mine) == c["model_only_right"] + c["other_only_right"]
        assert all(r["model"] != r["other"] and (r["model"] == r["gold"]) != (r["other"] == r["gold"]) for r in mine)
