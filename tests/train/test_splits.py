import pytest

from conftest import BUNDLED_EXPORTS, SEED_EXPORT
from tagger.annotations import Sentence, read_export, read_exports
from tagger.labels import DEFAULT
from tagger.cli import UserError
from train.splits import cross_validation_splits, fingerprint, label_counts, make_splits, normalise

LABELS_CYCLE = [("strike",), ("withdrawal",), ("evacuation",), ("atrocity_claim",), ()]


def synthetic(articles=40, per_article=5):
    return [Sentence(text=f"article {a} sentence {i}", labels=LABELS_CYCLE[(a + i) % 5],
                     group=f"art-{a}", task=f"t#{a}-{i}") for a in range(articles) for i in range(per_article)]


def groups_by_split(splits):
    return {name: set(split["group"]) for name, split in splits.items()}


def test_no_article_is_in_two_splits():
    groups = groups_by_split(make_splits(synthetic(), DEFAULT, 0.15, 0.15, seed=1))
    assert not groups["train"] & groups["validation"]
    assert not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]


def test_every_sentence_lands_in_exactly_one_split():
    sentences = synthetic()
    splits = make_splits(sentences, DEFAULT, 0.15, 0.15, seed=1)
    assert sorted(t for split in splits.values() for t in split["task"]) == sorted(s.task for s in sentences)


def test_splits_are_deterministic_and_depend_on_the_seed():
    sentences = synthetic()
    assert fingerprint(make_splits(sentences, DEFAULT, 0.15, 0.15, 7)) == fingerprint(make_splits(sentences, DEFAULT, 0.15, 0.15, 7))
    assert fingerprint(make_splits(sentences, DEFAULT, 0.15, 0.15, 7)) != fingerprint(make_splits(sentences, DEFAULT, 0.15, 0.15, 8))


def test_identical_sentences_in_different_articles_stay_together():
    sentences = synthetic()
    # The same wire sentence in four articles, spelled with different case and spacing.
    for a in (0, 10, 20, 30):
        sentences.append(Sentence(text="A missile  hit the DEPOT.", labels=("strike",),
                                  group=f"art-{a}", task=f"t#dup-{a}"))
    splits = make_splits(sentences, DEFAULT, 0.15, 0.15, seed=3)
    holding = [name for name, split in splits.items()
               if any(normalise(t) == "a missile hit the depot." for t in split["text"])]
    assert len(holding) == 1


def test_every_split_sees_every_class_when_the_data_allows():
    splits = make_splits(synthetic(), DEFAULT, 0.15, 0.15, seed=5)
    for split in splits.values():
        assert all(count > 0 for count in label_counts(split, DEFAULT.labels).values())


def test_seed_articles_split_into_whole_articles():
    sentences, _ = read_export(SEED_EXPORT, DEFAULT)
    groups = groups_by_split(make_splits(sentences, DEFAULT, 0.15, 0.15, seed=42))
    assert [len(groups[name]) for name in ("train", "validation", "test")] == [3, 1, 1]


def test_too_few_articles_is_a_clear_error():
    with pytest.raises(UserError, match="only 2 distinct articles"):
        make_splits(synthetic(articles=2), DEFAULT, 0.15, 0.15, seed=1)


def test_the_bundled_corpus_splits_by_article_across_its_batches():
    # 679 articles of batch 2 also have sentences in batch 1: the split must see both files.
    sentences, _ = read_exports(BUNDLED_EXPORTS, DEFAULT)
    splits = make_splits(sentences, DEFAULT, 0.15, 0.15, seed=42)
    articles = {name: set(splits[name]["group"]) for name in splits}
    assert not (articles["train"] & articles["test"]) and not (articles["validation"] & articles["test"])
    assert not articles["train"] & articles["validation"]
    assert sum(map(len, splits.values())) == len(sentences) == 4775
    for name in ("validation", "test"):
        share = len(splits[name]) / len(sentences)
        assert 0.10 < share < 0.20, (name, share)
        assert min(label_counts(splits[name], DEFAULT.labels).values()) >= 20


def test_cross_validation_folds_test_every_sentence_once_and_never_leak():
    sentences = synthetic()
    folds = list(cross_validation_splits(sentences, DEFAULT, 5, 0.15, seed=2))
    tested = [t for fold in folds for t in fold["test"]["task"]]
    assert sorted(tested) == sorted(s.task for s in sentences)
    for fold in folds:
        groups = groups_by_split(fold)
        assert not groups["test"] & (groups["train"] | groups["validation"])
        assert not groups["train"] & groups["validation"]


def test_held_out_outlets_form_the_test_split_and_shared_text_does_not_leak():
    sentences = [Sentence(text=f"s{a}-{i}", labels=LABELS_CYCLE[(a + i) % 5], group=f"art-{a}",
                          task=f"t#{a}-{i}", outlet="rt" if a % 4 == 0 else "bbc")
                 for a in range(40) for i in range(4)]
    sentences.append(Sentence(text="s0-0", labels=(), group="art-99", task="t#copy", outlet="bbc"))
    splits = make_splits(sentences, DEFAULT, 0.15, 0.15, seed=1, test_outlets=["rt"])
    assert set(splits["test"]["outlet"]) == {"rt"} and len(splits["test"]) == 40
    assert set(splits["train"]["outlet"]) == set(splits["validation"]["outlet"]) == {"bbc"}
    assert "t#copy" not in list(splits["train"]["task"]) + list(splits["validation"]["task"])


def test_unknown_test_outlet_is_a_clear_error():
    with pytest.raises(UserError, match=r"test_outlets \['cnn'\] do not occur"):
        make_splits(synthetic(), DEFAULT, 0.15, 0.15, seed=1, test_outlets=["cnn"])
