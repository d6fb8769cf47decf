"""eval.learning_curve: every recipe on the same draws and the same held-out sentences, and the
bad input it refuses before it trains anything."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from eval.learning_curve import Harness, learning_curve, macro_f1, markdown, parse_recipe, summary
from tagger.cli import UserError
from train.recipes import SMALL
from train.config import load_config

# Fast recipes on the tiny model: the harness is under test, not the recipes' quality.
RECIPES = ["small:min_steps=2", "finetune:max_steps=2,num_train_epochs=1"]


def seed_config(output_dir, *options):
    return load_config(["--config", str(REPO / "configs/smoke.yaml"), "--output_dir", str(output_dir), *options])


@pytest.fixture(scope="module")
def curve(tmp_path_factory):
    output = tmp_path_factory.mktemp("curve")
    text = learning_curve(seed_config(output), [30, 40], 2, RECIPES, jobs=1)
    return output, text


def rows(output):
    return [json.loads(line) for line in (output / "runs.jsonl").read_text().splitlines()]


def test_every_recipe_trains_on_the_same_draw_and_is_scored_on_the_same_sentences(curve):
    output, text = curve
    by_run = {(r["size"], r["draw"], r["recipe"]): r for r in rows(output)}
    assert len(by_run) == 2 * 2 * len(RECIPES)
    for size in (30, 40):
        for draw in (0, 1):
            small, finetune = (by_run[(size, draw, recipe)] for recipe in RECIPES)
            assert small["drawn_tasks"] == finetune["drawn_tasks"] and len(small["drawn_tasks"]) == size
            # The finetune recipe splits off validation articles: a draw can leave a label untrained.
            assert "error" in finetune or np.shape(small["scores"]["test"]) == np.shape(finetune["scores"]["test"])
        assert by_run[(size, 0, RECIPES[0])]["drawn_tasks"] != by_run[(size, 1, RECIPES[0])]["drawn_tasks"]
    scores = np.load(output / "scores.npz")
    assert f"30-0-{RECIPES[0]}/test" in scores.files
    assert "| small:min_steps=2 |" in text and "N = 40" in text
    assert (output / "learning_curve.png").stat().st_size > 0 and not (output / "runs").exists()


def test_the_table_counts_the_corrections_each_runs_pre_annotations_would_need(curve):
    output, text = curve
    harness = Harness(seed_config(output))
    gold = harness.gold(harness.parts["test"])
    labels = harness.data.schema.labels
    refused = {r["draw"] for r in rows(output) if r["size"] == 30 and "error" in r}  # left out of every mean
    corrections = [((np.array(r["scores"]["test"]) >= [r["thresholds"][label] for label in labels]) != gold).sum()
                   / len(gold) for r in rows(output)
                   if r["size"] == 30 and r["recipe"] == RECIPES[0] and r["draw"] not in refused]
    table = text[text.index("# Corrections per test sentence"):]
    assert corrections and f"leaving them empty: {gold.sum() / len(gold):.3f}" in table
    assert f"| {RECIPES[0]} | {np.mean(corrections):.3f} ± {np.std(corrections):.3f}" in table


def test_a_rerun_trains_only_what_is_missing(curve):
    output, _ = curve
    before = (output / "runs.jsonl").read_text()
    learning_curve(seed_config(output), [30, 40], 2, RECIPES, jobs=1)
    assert (output / "runs.jsonl").read_text() == before


def test_a_rerun_trains_again_a_run_whose_recipe_changed_since(curve, tmp_path, monkeypatch):
    output, _ = curve
    (tmp_path / "runs.jsonl").write_text((output / "runs.jsonl").read_text())
    learning_curve(seed_config(tmp_path), [30], 1, RECIPES[:1], jobs=1)
    assert len(rows(tmp_path)) == len(rows(output))  # the same settings: nothing trained
    learning_curve(seed_config(tmp_path, "--logging_steps", "5"), [30], 1, RECIPES[:1], jobs=1)
    assert len(rows(tmp_path)) == len(rows(output))  # an option given that the recipe does not set: nothing trained
    monkeypatch.setattr("train.recipes.SMALL", {**SMALL, "learning_rate": 5e-5})
    learning_curve(seed_config(tmp_path), [30], 1, RECIPES[:1], jobs=1)
    new = rows(tmp_path)[len(rows(output)):]
    assert [(r["run"], r["settings"]["learning_rate"]) for r in new] == [(f"30-0-{RECIPES[0]}", 5e-5)]


def test_a_row_written_before_an_option_existed_is_reused_where_the_run_has_its_default(curve, tmp_path):
    output, _ = curve
    older = [{**row, "settings": {k: v for k, v in row["settings"].items() if k != "frozen_layers"}}
             for row in rows(output)]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in older))
    learning_curve(seed_config(tmp_path), [30], 1, RECIPES[:1], jobs=1)
    assert len(rows(tmp_path)) == len(older)  # nothing trained
    learning_curve(seed_config(tmp_path, "--frozen_layers", "1"), [30], 1, RECIPES[:1], jobs=1)
    assert [r["settings"]["frozen_layers"] for r in rows(tmp_path)[len(older):]] == [1]


def test_a_curve_spread_over_runs_draws_the_same_as_one_run(curve, tmp_path):
    output, _ = curve
    text = learning_curve(seed_config(tmp_path), [30], 2, RECIPES[:1], jobs=1, first_draw=1)
    (later,) = rows(tmp_path)
    (same,) = [r for r in rows(output) if r["run"] == later["run"]]
    assert later["run"] == f"30-1-{RECIPES[0]}" and later["drawn_tasks"] == same["drawn_tasks"]
    assert np.allclose(later["scores"]["test"], same["scores"]["test"], atol=1e-3)
    assert "of 2 draws" not in text  # one draw asked for, one run


def test_a_first_draw_past_the_draws_is_one_line_and_nothing_is_written(tmp_path):
    with pytest.raises(UserError, match="--first_draw 2 must be from 0 to --draws - 1 \\(1\\)"):
        learning_curve(seed_config(tmp_path / "curve"), [30], 2, RECIPES, jobs=1, first_draw=2)
    assert not (tmp_path / "curve").exists()


@pytest.mark.parametrize("sizes, recipes, message", [
    ([10_000], RECIPES, "a draw of 10000 sentences is larger than the"),
    ([30], ["small", "tiny"], "unknown recipe 'tiny'"),
    ([30], ["small:learning_rat=1e-4"], "is not KEY=VALUE with a training option as KEY"),
])
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, sizes, recipes, message):
    with pytest.raises(UserError, match=message):
        learning_curve(seed_config(tmp_path / "curve"), sizes, 1, recipes, jobs=1)
    assert not (tmp_path / "curve").exists()


def test_a_recipe_carries_typed_training_options():
    assert parse_recipe("small:learning_rate=5e-5,min_steps=150") == ("small", {"learning_rate": 5e-5,
                                                                                 "min_steps": 150})
    assert parse_recipe("small:freeze_embeddings=true,head_init=random") == ("small", {"freeze_embeddings": True,
                                                                                       "head_init": "random"})


def test_the_command_prints_the_table(tmp_path):
    result = subprocess.run([sys.executable, "-m", "eval.learning_curve", "--config", "configs/smoke.yaml",
                             "--sizes", "30", "--draws", "1", "--recipes", RECIPES[0], "--output_dir",
                             str(tmp_path / "curve")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "# Macro-F1 on the test articles" in result.stdout and "| small:min_steps=2 |" in result.stdout


@pytest.mark.slow
def test_the_probe_baseline_ranks_the_test_sentences_from_the_packaged_encoder(tmp_path):
    from sklearn.metrics import roc_auc_score
    from eval.learning_curve import Harness
    from train.model import packaged_encoder_path
    config = seed_config(tmp_path / "curve", "--model_name_or_path", packaged_encoder_path())
    learning_curve(config, [70], 1, ["probe"], jobs=1)
    scores = np.array(rows(tmp_path / "curve")[0]["scores"]["test"])
    harness = Harness(config)
    gold = harness.gold(harness.parts["test"])
    aucs = [roc_auc_score(gold[:, i], scores[:, i]) for i in range(gold.shape[1]) if 0 < gold[:, i].sum() < len(gold)]
    assert aucs and np.mean(aucs) > 0.75, aucs  # an untrained or shuffled probe ranks at about 0.5


def test_the_probe_loads_its_encoder_only_for_sentences_it_has_not_embedded():
    from eval.baselines import SentenceEmbeddingProbe
    from train.model import packaged_encoder_path
    texts, gold, cache = ["Troops withdrew.", "A depot was shelled.", "Buses left the city."], np.eye(3), {}
    first = SentenceEmbeddingProbe(["a", "b", "c"], packaged_encoder_path(), 0, cache).fit(texts, gold)
    again = SentenceEmbeddingProbe(["a", "b", "c"], packaged_encoder_path(), 0, cache).fit(texts, gold)
    assert "encoder" in first.__dict__ and "encoder" not in again.__dict__
    assert np.allclose(first.scores(texts), again.scores(texts)) and "encoder" not in again.__dict__


def test_a_draw_one_recipe_could_not_train_is_left_out_of_every_recipes_mean():
    def row(recipe, draw, f1=None):
        scored = {"test": {"macro_f1": f1}, "dev": {"macro_f1": f1}, "scores": {"test": [[0.9, 0, 0, 0]]},
                  "thresholds": dict.fromkeys("abcd", 0.5)}
        return {"run": f"10-{draw}-{recipe}", "recipe": recipe, "size": 10, "draw": draw,
                **(scored if f1 is not None else {"error": "label 'strike' has no sentence"})}
    rows = [row("small", 0, 0.2), row("probe", 0, 0.1), row("small", 1), row("probe", 1, 0.9),
            row("small", 2, 0.4), row("probe", 2, 0.3)]
    table = summary(rows, [10], ["small", "probe"], macro_f1("test"))
    assert table["small"][10] == pytest.approx((0.3, 0.1, 2, 1)) and table["probe"][10] == pytest.approx((0.2, 0.1, 2, 0))
    text = markdown(rows, [10], ["small", "probe"], 3, np.zeros((1, 4)))
    assert "| small | 0.300 ± 0.100 (2 of 3 draws, 1 failed) |" in text and "| probe | 0.200 ± 0.100 (2 of 3 draws) |" in text


def test_a_draw_the_small_recipe_cannot_train_says_what_that_recipe_needs(tmp_path):
    learning_curve(seed_config(tmp_path), [2], 1, RECIPES[:1], jobs=1)
    (row,) = rows(tmp_path)
    assert "no training sentence carries" in row["error"] and "--recipe small" not in row["error"]
    assert "The small-data recipe needs each label on at least one training sentence" in row["error"]
