"""The training recipes: `auto` picks the small-data recipe below the crossover, the small
recipe's settings, its head started from a linear probe, and a project of six annotations."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from sklearn.linear_model import LogisticRegression

from conftest import REPO, SEED_EXPORT
from train import recipes
from train.config import load_config
from train.linear_probe import head_inputs, init_head_from_probe, output_layer
from train.model import tiny_distilbert
from train.run import LOWEST_SHARE_CUT, run, untuned_thresholds
from train.trainer import max_steps

SMOKE = str(REPO / "configs/smoke.yaml")


def config(*options):
    return load_config(["--config", SMOKE, *options])


def test_auto_takes_the_small_recipe_below_the_crossover_and_says_why():
    chosen, why = recipes.resolve(config("--recipe", "auto"), recipes.SMALL_DATA_LIMIT - 1)
    assert chosen.recipe == "small" and chosen.validation_fraction == 0 and chosen.head_init == "probe"
    assert chosen.fixed_threshold == 0.5 and chosen.min_steps == recipes.SMALL["min_steps"]
    assert f"{recipes.SMALL_DATA_LIMIT - 1} annotated sentences" in why and "--recipe finetune" in why


def test_auto_keeps_the_configs_settings_from_the_crossover_on():
    given = config("--recipe", "auto")
    chosen, why = recipes.resolve(given, recipes.SMALL_DATA_LIMIT)
    assert chosen.recipe == "finetune" and "--recipe small" in why
    assert (chosen.validation_fraction, chosen.learning_rate, chosen.head_init) == (
        given.validation_fraction, given.learning_rate, "random")


@pytest.mark.parametrize("recipe", ["small", "auto"])
def test_options_given_on_the_command_line_win_over_the_recipe(recipe):
    chosen, why = recipes.resolve(config("--recipe", recipe, "--num_train_epochs", "10", "--learning-rate=5e-5"), 100)
    assert chosen.recipe == "small" and (chosen.num_train_epochs, chosen.learning_rate) == (10, 5e-5)
    assert (chosen.min_steps, chosen.head_init) == (recipes.SMALL["min_steps"], "probe")  # the rest: the recipe's
    assert why.endswith("; as given: num_train_epochs 10.0, learning_rate 5e-05")


def test_the_recipe_wins_over_the_config_file_but_for_the_options_it_keeps(tmp_path):
    chosen, why = recipes.resolve(config("--recipe", "small"), 100)
    assert chosen.learning_rate == recipes.SMALL["learning_rate"] != 1e-3  # smoke.yaml's
    assert "as given" not in why
    (tmp_path / "keeps.yaml").write_text(f"base: {SMOKE}\nkeep_options: [learning_rate]\n")
    chosen, _ = recipes.resolve(load_config(["--config", str(tmp_path / "keeps.yaml"), "--recipe", "small"]), 100)
    assert chosen.learning_rate == 1e-3 and chosen.num_train_epochs == recipes.SMALL["num_train_epochs"]


@pytest.mark.parametrize("recipe, sentences", [("finetune", 10), ("small", 100_000)])
def test_an_explicit_recipe_wins_over_the_data_size(recipe, sentences):
    chosen, why = recipes.resolve(config("--recipe", recipe), sentences)
    assert chosen.recipe == recipe and "asked for" in why


def test_min_steps_lengthens_a_short_run_and_leaves_a_long_one():
    short = config("--min_steps", "60", "--num_train_epochs", "1", "--per_device_train_batch_size", "16")
    assert max_steps(short, 100) == 60  # 7 steps an epoch
    assert max_steps(short, 2000) == -1  # 125 steps an epoch: the epochs decide
    assert max_steps(config("--min_steps", "60", "--max_steps", "5"), 100) == 5  # max_steps is max_steps


def test_the_small_recipe_trains_three_epochs_where_they_are_more_than_its_minimum_steps():
    small, _ = recipes.resolve(config("--recipe", "small", "--per_device_train_batch_size", "16"), 1000)
    assert max_steps(small, 100) == small.min_steps == 60  # 7 steps an epoch
    # 63 steps an epoch: one pass over 1,000 sentences under-trained (docs/results.md), three epochs decide
    assert max_steps(small, 1000) == -1 and small.num_train_epochs == 3


def test_the_probe_head_gives_the_logistic_regressions_scores():
    torch.manual_seed(0)
    tasks = json.loads(SEED_EXPORT.read_text())[:80]
    texts = [task["data"]["text"] for task in tasks]
    labels = ["withdrawal", "strike", "evacuation", "atrocity_claim"]
    gold = np.array([[int(any(label in r["value"]["choices"] for a in task["annotations"] for r in a["result"]))
                      for label in labels] for task in tasks])
    model, tokenizer = tiny_distilbert(labels)
    features = head_inputs(model, output_layer(model), tokenizer, texts, 96, 64)
    init_head_from_probe(model, tokenizer, texts, gold, 96)
    model.eval()
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
    for column in range(len(labels)):
        probe = LogisticRegression(class_weight="balanced", C=1.0, max_iter=2000).fit(features, gold[:, column])
        np.testing.assert_allclose(logits[:, column], probe.decision_function(features), atol=1e-4)


def test_a_label_with_fewer_positives_than_threshold_positives_gets_a_lower_threshold():
    labels = ["common", "rare", "absent"]
    train = np.zeros((100, 3), dtype=int)
    train[:40, 0], train[:6, 1] = 1, 1
    rule = config("--fixed_threshold", "0.5", "--threshold_positives", "15")
    assert untuned_thresholds(rule, labels, train) == pytest.approx({"common": 0.5, "rare": 0.2, "absent": 0.5 / 15},
                                                                    rel=1e-3)
    assert untuned_thresholds(config("--fixed_threshold", "0.4"), labels, train) == dict.fromkeys(labels, 0.4)


def test_a_label_on_few_of_many_sentences_gets_a_lower_threshold_still():
    """A label added late to a large project: 10 of 2,000 sentences, 0.5% against the recipe's 5%."""
    labels = ["common", "late", "late_but_frequent"]
    train = np.zeros((2000, 3), dtype=int)
    train[:400, 0], train[:10, 1], train[:100, 2] = 1, 1, 1
    small, _ = recipes.resolve(config("--recipe", "small"), 2000)
    assert small.threshold_share == 0.05
    assert untuned_thresholds(small, labels, train) == pytest.approx(
        {"common": 0.5, "late": 0.5 * 10 / 15 * (0.005 / 0.05) ** 2, "late_but_frequent": 0.5}, rel=1e-3)
    # Two of 2,000 would be cut at 2.7e-05, on nearly every sentence: the floor stops it.
    train[2:10, 1] = 0
    assert untuned_thresholds(small, labels, train)["late"] == LOWEST_SHARE_CUT
    train[:10, 1] = 1
    # Where the rule for a few positives was measured (100 sentences), nothing changes.
    assert untuned_thresholds(small, labels, train[:100]) == pytest.approx(
        {"common": 0.5, "late": 0.5 * 10 / 15, "late_but_frequent": 0.5}, rel=1e-3)


def six_sentence_export(path):
    """A new project's first annotations: one article, one or two sentences per label, one without."""
    tasks, picked, wanted = json.loads(SEED_EXPORT.read_text()), [], {"withdrawal": 2, "strike": 1, "evacuation": 1,
                                                                       "atrocity_claim": 1, "": 1}
    for task in tasks:
        chosen = [c for a in task["annotations"] for r in a["result"] for c in r["value"]["choices"]]
        key = chosen[0] if len(chosen) == 1 else "" if not chosen else None
        if key is not None and wanted.get(key, 0) > 0:
            wanted[key] -= 1
            picked.append(task)
    assert not any(wanted.values())
    path.write_text(json.dumps(picked))
    return path


def test_a_project_of_six_annotations_trains_on_all_of_them(tmp_path, caplog):
    caplog.set_level("INFO")
    export = six_sentence_export(tmp_path / "six.json")
    model = run(config("--recipe", "auto", "--data_files", str(export), "--output_dir", str(tmp_path / "model")))
    assert "Recipe small: 6 annotated sentences" in caplog.text
    info = json.loads((model / "run_info.json").read_text())
    assert info["split_sizes"] == {"train": 6, "validation": 0, "test": 0} and info["recipe"] == "small"
    # Two withdrawal sentences, one of each other label: thresholds far below 0.5.
    assert json.loads((model / "thresholds.json").read_text()) == pytest.approx({
        "withdrawal": 0.5 * 2 / 15, "strike": 0.5 / 15, "evacuation": 0.5 / 15, "atrocity_claim": 0.5 / 15}, rel=1e-3)
    card = (model / "README.md").read_text()
    assert "lower in proportion for a label with fewer than 15 training positives" in card
    assert "for a label on less than 5% of the training sentences (not below 0.003)" in card
    assert yaml.safe_load((model / "train_config.yaml").read_text())["recipe"] == "small"
    assert "None: the project was too small to hold out test articles" in card
    assert "expect its pre-annotations to need more\ncorrections than empty ones" in card
    assert info["optimizer_steps"] == recipes.SMALL["min_steps"]  # 6 sentences: one step an epoch
    scored = subprocess.run([sys.executable, "-m", "eval", "--model", str(model), "--split", "test"], cwd=REPO,
                            capture_output=True, text=True)
    assert scored.returncode == 1 and "has no test split to score" in scored.stderr, scored.stderr[-2000:]


def test_an_unknown_recipe_stops_the_run_before_anything_is_written(tmp_path):
    result = subprocess.run([sys.executable, "-m", "train", "--config", SMOKE, "--recipe", "tiny",
                             "--output_dir", str(tmp_path / "model")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0 and "invalid choice: 'tiny'" in result.stderr
    assert not list(tmp_path.iterdir())
