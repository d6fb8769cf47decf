"""Baselines scored in the same harness, on the same splits as the model."""

import functools
import re
import tempfile

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline

from tagger.cli import UserError
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


class SentenceEmbeddingProbe:
    """Frozen sentence embeddings (sentence-transformers: the encoder with its pooling, mean
    pooling for a plain transformer) and a class-weighted logistic regression per label: the
    small-data baseline. A label with no positive sentence is never chosen."""

    def __init__(self, label_names, encoder: str, seed: int, cache: dict | None = None):
        self.label_names, self.encoder_name = label_names, encoder
        self.cache = {} if cache is None else cache  # text -> embedding, shared by runs on the same encoder

    @functools.cached_property
    def encoder(self):
        """Loaded only when a text is not in the cache: runs on cached sentences need no encoder."""
        from sentence_transformers import SentenceTransformer
        return SentenceTransformer(self.encoder_name)

    def embed(self, texts) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.encoder.encode(missing, batch_size=64, normalize_embeddings=True)))
        return np.stack([self.cache[text] for text in texts])

    def fit(self, texts, labels):
        features, labels = self.embed(texts), np.asarray(labels)
        self.models = [LogisticRegression(class_weight="balanced", C=1.0, max_iter=2000).fit(features, column)
                       if 0 < column.sum() < len(column) else None for column in labels.T]
        return self

    def scores(self, texts) -> np.ndarray:
        features = self.embed(texts)
        return np.column_stack([model.predict_proba(features)[:, 1] if model is not None else np.zeros(len(features))
                                for model in self.models])


class SetFitBaseline:
    """SetFit (its defaults, one-vs-rest, 20 iterations) on the same encoder."""

    def __init__(self, label_names, encoder: str, seed: int, cache=None):
        try:
            from setfit import SetFitModel
        except ImportError:
            raise UserError("the setfit recipe needs SetFit: pip install setfit") from None
        self.label_names, self.seed = label_names, seed
        self.model = SetFitModel.from_pretrained(encoder, multi_target_strategy="one-vs-rest")

    def fit(self, texts, labels):
        from datasets import Dataset
        from setfit import Trainer, TrainingArguments
        dataset = Dataset.from_dict({"text": list(texts), "label": np.asarray(labels).astype(int).tolist()})
        with tempfile.TemporaryDirectory() as checkpoints:  # SetFit writes ./checkpoints otherwise
            Trainer(model=self.model, args=TrainingArguments(output_dir=checkpoints, num_iterations=20, seed=self.seed),
                    train_dataset=dataset).train()
        return self

    def scores(self, texts) -> np.ndarray:
        return np.asarray(self.model.predict_proba(list(texts), as_numpy=True), dtype=float)


BASELINES = (AlwaysNone, KeywordRules, TfidfLogistic)


def test_predictions(baseline_class, splits, labels) -> np.ndarray:
    """Fit on train, take thresholds from validation (fixed 0.5 for rules, and without a
    validation split), predict test."""
    baseline = baseline_class(labels).fit(list(splits["train"]["text"]), list(splits["train"]["labels"]))
    validation = splits["validation"]
    thresholds = (tune_thresholds(list(validation["labels"]), baseline.scores(list(validation["text"])), labels)
                  if baseline.tuned and len(validation) else dict.fromkeys(labels, 0.5))
    return apply_thresholds(baseline.scores(list(splits["test"]["text"])), thresholds)
