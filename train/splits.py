"""Deterministic train/validation/test splits that never cut through an article.

Sentences are grouped by article, and sentences with the same text are put in the same group
too (a repeated headline or wire sentence in two articles must not sit in train and test).
Groups are dealt into splits with scikit-learn's StratifiedGroupKFold, stratified on each
sentence's rarest label so that every split sees every class where the data allows it.
"""

import hashlib
import json
from collections import Counter

import numpy as np
from datasets import Dataset, DatasetDict
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from tagger.annotations import Sentence
from tagger.cli import UserError
from tagger.labels import LabelSchema


def make_splits(sentences: list[Sentence], schema: LabelSchema, validation_fraction: float, test_fraction: float,
                seed: int, test_outlets=()) -> DatasetDict:
    """Train/validation/test by article; with `test_outlets`, the test split is those outlets
    (generalisation to unseen outlets) and train/validation come from the others."""
    return as_splits(sentences, schema, *split_indices(sentences, validation_fraction, test_fraction, seed,
                                                       test_outlets))


def split_indices(sentences: list[Sentence], validation_fraction: float, test_fraction: float, seed: int,
                  test_outlets=()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """make_splits' (train, validation, test) as indices into `sentences`."""
    groups, strata = merged_groups(sentences), rarest_label(sentences)
    everything = np.arange(len(sentences))
    if test_outlets:
        rest, test = outlet_hold_out(sentences, groups, set(test_outlets))
        test_fraction = len(test) / len(sentences)
    elif test_fraction == 0:
        rest, test = everything, everything[:0]
    else:
        rest, test = hold_out(everything, groups, strata, test_fraction, seed)
    train, validation = split_off_validation(rest, groups, strata, validation_fraction / (1 - test_fraction), seed)
    return train, validation, test


def cross_validation_splits(sentences: list[Sentence], schema: LabelSchema, folds: int, validation_fraction: float,
                            seed: int):
    """k splits whose test parts are disjoint groups of articles covering every sentence once."""
    groups, strata = merged_groups(sentences), rarest_label(sentences)
    folding = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for rest, test in folding.split(np.arange(len(sentences)), strata, groups):
        train, validation = split_off_validation(rest, groups, strata, validation_fraction / (1 - 1 / folds), seed)
        yield as_splits(sentences, schema, train, validation, test)


def as_splits(sentences, schema: LabelSchema, train, validation, test) -> DatasetDict:
    return DatasetDict(train=to_dataset(sentences, schema, train), validation=to_dataset(sentences, schema, validation),
                       test=to_dataset(sentences, schema, test))


def outlet_hold_out(sentences, groups, outlets: set[str]):
    """(rest, test): test is every sentence of `outlets`; sentences of other outlets that share
    a group with a test sentence (the same wire text) are left out of both, so none leaks."""
    unknown = outlets - {s.outlet for s in sentences}
    if unknown:
        raise UserError(f"test_outlets {sorted(unknown)} do not occur in the data "
                        f"(outlets: {sorted({s.outlet for s in sentences})})")
    in_test = np.array([s.outlet in outlets for s in sentences])
    test_groups = set(groups[in_test])
    leaking = ~in_test & np.isin(groups, list(test_groups))
    return np.flatnonzero(~in_test & ~leaking), np.flatnonzero(in_test)


def split_off_validation(indices, groups, strata, fraction: float, seed: int):
    """(train, validation); a fraction of 0 leaves validation empty: train on everything but test."""
    if fraction == 0:
        return indices, indices[:0]
    return hold_out(indices, groups, strata, fraction, seed, splits_left=2)


def hold_out(indices, groups, strata, fraction: float, seed: int, splits_left: int = 3):
    """Split indices into (kept, held out), the held-out part about `fraction` of the groups;
    `splits_left`: the splits still to be made from them, each needing an article of its own."""
    distinct = len(set(groups[indices]))
    if distinct < splits_left:
        raise UserError(f"only {distinct} distinct articles{' left after the test split' if splits_left < 3 else ''}: "
                        "at least 3 are needed for train, validation and test splits that share no article")
    # Few articles (the five seed articles): hold out one whole article rather than fail.
    n_splits = min(max(2, round(1 / fraction)), distinct)
    # scikit-learn refuses to stratify when every stratum is smaller than the number of folds (a
    # project of a few tasks); then the folds are fewer, or, at one sentence per stratum, unstratified.
    largest_stratum = max(Counter(strata[indices]).values())
    folds = (StratifiedGroupKFold(n_splits=min(n_splits, largest_stratum), shuffle=True, random_state=seed)
             if largest_stratum >= 2 else GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed))
    kept, held = next(folds.split(indices, strata[indices], groups[indices]))
    return indices[kept], indices[held]


def merged_groups(sentences: list[Sentence]) -> np.ndarray:
    """Group id per sentence: articles joined whenever they share a sentence text (union-find)."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for sentence in sentences:
        parent[root("text:" + normalise(sentence.text))] = root("group:" + sentence.group)
    return np.array([root("group:" + s.group) for s in sentences])


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def rarest_label(sentences: list[Sentence]) -> np.ndarray:
    counts = Counter(label for s in sentences for label in s.labels)
    return np.array([min(s.labels, key=lambda label: counts[label]) if s.labels else "none"
                     for s in sentences])


def to_dataset(sentences: list[Sentence], schema: LabelSchema, indices) -> Dataset:
    rows = [sentences[i] for i in sorted(indices)]
    return Dataset.from_dict({
        "text": [s.text for s in rows],
        "labels": [schema.multi_hot(s.labels) for s in rows],
        "group": [s.group for s in rows],
        "task": [s.task for s in rows],
        "outlet": [s.outlet for s in rows],
    })


def fingerprint(splits: DatasetDict) -> str:
    """A hash of every split's texts and labels: equal fingerprints mean equal training data."""
    digest = hashlib.sha256()
    for name in sorted(splits):
        digest.update(json.dumps([name, list(splits[name]["text"]), list(splits[name]["labels"])]).encode())
    return digest.hexdigest()


def label_counts(dataset: Dataset, labels) -> dict[str, int]:
    totals = np.asarray(dataset["labels"]).sum(axis=0) if len(dataset) else np.zeros(len(labels))
    return {label: int(n) for label, n in zip(labels, totals)}
