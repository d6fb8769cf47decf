"""Baselines scored in the same harness, on the same splits as the model."""

import re

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline

from tagger.metrics import apply_thresholds, tune_thresholds

# Words an analyst would search for first, taken from the annotation guidelines.
KEYWORDS = {
    "withdrawal": r"withdr[ae]w|withdrawal|withdrawing|retreat|pull(?:ed|ing|s)? (?:back|out)|fled|abandon|de-?escalat",
    "strike": r"missile|shell(?:ed|ing|s)?\b|strikes?\b|struck|bomb|rocket|drone|artillery|explosi|air ?raid",
    "evacuation": r"evacu|humanitarian corridor|corridors?\b|buses",
    "atrocity_claim": r"war crime|genocide|tortur|rape|massacre|mass grave|execut|deport|filtration|abduct|kidnap|atrocit",
}


class AlwaysNone:
    name = "always none"
    tuned = False  # fixed rules: thresholds are not tuned on validation

    def __init__(self, label_names):
        self.label_names = label_names

    def fit(self, texts, labels):
        return self

    def scores(self, texts) -> np.ndarray:
        return np.zeros((len(texts), len(self.label_names)))


class KeywordRules(AlwaysNone):
    """The bundled labels' keywords; a label of another project has none and is never chosen."""

    name = "keyword rules"

    def fit(self, texts, labels):
        self.patterns = [re.compile(KEYWORDS[label], re.IGNORECASE) if label in KEYWORDS else None
                         for label in self.label_names]
        return self

    def scores(self, texts) -> np.ndarray:
        return np.array([[float(bool(p and p.search(t))) for p in self.patterns] for t in texts]).reshape(
            len(texts), len(self.patterns))


class TfidfLogistic(AlwaysNone):
    """Word 1-2 gram TF-IDF with one class-balanced logistic regression per label."""

    name = "TF-IDF + logistic regression"
    tuned = True

    def fit(self, texts, labels):
        self.model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            OneVsRestClassifier(LogisticRegression(class_weight="balanced", max_iter=2000, C=4.0)))
        self.model.fit(texts, np.asarray(labels).astype(int))
        return self

    def scores(self, texts) -> np.ndarray:
        return self.model.predict_proba(texts)


BASELINES = (AlwaysNone, KeywordRules, TfidfLogistic)


def test_predictions(baseline_class, splits, labels) -> np.ndarray:
    """Fit on train, take thresholds from validation (fixed 0.5 for rules, and without a
    validation split), predict test."""
    baseline = baseline_class(labels).fit(list(splits["train"]["text"]), list(splits["train"]["labels"]))
    validation = splits["validation"]
    thresholds = (tune_thresholds(list(validation["labels"]), baseline.scores(list(validation["text"])), labels)
                  if baseline.tuned and len(validation) else dict.fromkeys(labels, 0.5))
    return apply_thresholds(baseline.scores(list(splits["test"]["text"])), thresholds)
