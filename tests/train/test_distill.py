import json

import numpy as np
import pytest

from conftest import LABELS, REPO
from tagger.annotations import ExportError
from tagger.predictor import Tagger
from train.config import ConfigError, load_config
from train.distill import with_teacher
from train.run import splits_as_trained


def unlabelled(path, rows):
    path.write_text(json.dumps([{"data": {"text": text, "article_id": article, "source": source}}
                                for text, article, source in rows]))
    return str(path)


def test_annotated_training_targets_mix_annotation_and_teacher(smoke_model):
    splits, _ = splits_as_trained(smoke_model)
    distilled = with_teacher(splits, str(smoke_model), [], teacher_weight=0.25, seed=0, labels=LABELS)
    gold = np.asarray(splits["train"]["labels"], dtype=np.float32)
    teacher = Tagger(smoke_model, mode="fp32").scores(list(splits["train"]["text"]))
    assert np.allclose(distilled["train"]["labels"], 0.75 * gold + 0.25 * teacher, atol=1e-6)
    assert list(distilled["train"]["text"]) == list(splits["train"]["text"])
    for name in ("validation", "test"):
        assert distilled[name]["labels"] == splits[name]["labels"]


def test_unlabelled_sentences_join_training_unless_annotated_or_from_held_out_articles(smoke_model, tmp_path):
    splits, _ = splits_as_trained(smoke_model)
    test_article, train_text = splits["test"]["group"][0], splits["train"]["text"][0]
    new = [f"Sentence {i} about shelling near the front, or about nothing at all." for i in range(40)]
    path = unlabelled(tmp_path / "tasks.json", [(text, f"new-{i % 7}", "") for i, text in enumerate(new)]
                      + [("From a test article, never to be trained on.", test_article, ""),
                         (train_text, "other", ""), (new[0], "new-0", "")])
    teacher = Tagger(smoke_model, mode="fp32")
    scores = teacher.scores(new)
    cut = np.array([teacher.thresholds[label] for label in LABELS])
    tagged = {text for text, row in zip(new, scores) if (row >= cut).any()}

    train = with_teacher(splits, str(smoke_model), [path], teacher_weight=0.5, seed=0, labels=LABELS)["train"]
    added = dict(zip(train["text"][len(splits["train"]):], train["labels"][len(splits["train"]):]))
    assert set(added) <= set(new) and tagged <= set(added)
    assert len(added) == len(tagged) + min(len(tagged), len(new) - len(tagged))
    for text, row in zip(new, scores):
        if text in added:
            assert np.allclose(added[text], row, atol=1e-6)  # the teacher's scores, as they are


def test_an_unlabelled_task_without_text_is_named(smoke_model, tmp_path):
    splits, _ = splits_as_trained(smoke_model)
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([{"data": {"text": "fine"}}, {"data": {"body": "no text"}}]))
    with pytest.raises(ExportError, match=r"tasks.json, task 1: no text at data.text"):
        with_teacher(splits, str(smoke_model), [str(path)], teacher_weight=0.5, seed=0, labels=LABELS)


@pytest.mark.parametrize("options, message", [
    (["--unlabelled_files", "u.json"], "unlabelled_files need a teacher"),
    (["--teacher", "m", "--teacher_weight", "1.5"], "teacher_weight must be between 0 and 1"),
])
def test_distillation_options_are_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        load_config(["--config", str(REPO / "configs/smoke.yaml"), *options])


def test_unlabelled_sentences_of_an_outlet_held_out_whole_are_left_out(smoke_model, tmp_path):
    splits, _ = splits_as_trained(smoke_model)
    outlets = {name: ["Held" if name == "test" else "Seen"] * len(splits[name]) for name in splits}
    splits = type(splits)({name: split.remove_columns("outlet").add_column("outlet", outlets[name])
                           for name, split in splits.items()})
    new = [f"Troops pulled back from village {i} overnight, officials said." for i in range(30)]
    path = unlabelled(tmp_path / "tasks.json", [(text, f"a-{i}", "Held" if i % 2 else "Seen")
                                                for i, text in enumerate(new)])
    train = with_teacher(splits, str(smoke_model), [path], teacher_weight=0.5, seed=0, labels=LABELS)["train"]
    added = set(train["text"][len(splits["train"]):])
    assert added and added <= {text for i, text in enumerate(new) if i % 2 == 0}
