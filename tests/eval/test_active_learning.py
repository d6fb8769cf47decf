"""eval.active_learning: every strategy starts from the same draw, least-certain adds what the
previous round was least certain about, diverse spreads its picks over clusters of the least
certain, random adds a random draw, and a rerun trains nothing."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from labelstudio.selection import spread_out
from eval.active_learning import STRATEGIES, simulate
from tagger.cli import UserError
from train.recipes import SMALL
from train.config import load_config
from train.model import packaged_encoder_path

START, STEP, BUDGET, SEEDS = 20, 15, 50, 2


def probe_config(output_dir):
    return load_config(["--config", str(REPO / "configs/smoke.yaml"), "--output_dir", str(output_dir),
                        "--model_name_or_path", packaged_encoder_path()])


@pytest.fixture(scope="module")
def simulation(tmp_path_factory):
    output = tmp_path_factory.mktemp("active")
    text = simulate(probe_config(output), "probe", SEEDS, START, STEP, BUDGET)
    rows = [json.loads(line) for line in (output / "runs.jsonl").read_text().splitlines()]
    return output, text, {(r["strategy"], r["seed"], r["annotated"]): r for r in rows}


def test_every_strategy_starts_from_the_same_draw_and_grows_by_a_step(simulation):
    _, _, rows = simulation
    for seed in range(SEEDS):
        firsts = [rows[(strategy, seed, START)]["tasks"] for strategy in STRATEGIES]
        assert all(first == firsts[0] for first in firsts) and len(firsts[0]) == START
        for strategy in STRATEGIES:
            sizes = sorted(n for s, k, n in rows if s == strategy and k == seed)
            assert sizes == [20, 35, 50]
            for smaller, larger in zip(sizes, sizes[1:]):
                before, after = rows[(strategy, seed, smaller)]["tasks"], rows[(strategy, seed, larger)]["tasks"]
                assert set(before) < set(after)
    assert rows[("least-certain", 0, START)]["tasks"] != rows[("least-certain", 1, START)]["tasks"]


def test_least_certain_adds_the_sentences_the_previous_round_was_least_certain_about(simulation):
    output, _, rows = simulation
    from eval.learning_curve import Harness
    harness = Harness(probe_config(output))
    position = {harness.sentences[p].task: i for i, p in enumerate(harness.pool)}
    assert len(position) == len(harness.pool)  # one sentence a task in this data
    for seed in range(SEEDS):
        before = rows[("least-certain", seed, START)]
        certainty = np.array(before["pool_certainty"])
        left = [position[t] for t in position if t not in before["tasks"]]
        least = sorted(certainty[left])[:STEP]

        def added(strategy):
            new = set(rows[(strategy, seed, START + STEP)]["tasks"]) - set(before["tasks"])
            return sorted(certainty[[position[t] for t in new]])

        assert added("least-certain") == least
        assert added("random") != least  # a random draw is not ordered by certainty


def test_the_report_counts_the_annotations_to_the_target_and_a_rerun_trains_nothing(simulation):
    output, text, rows = simulation
    full = rows[("full", 0, max(n for s, _, n in rows if s == "full"))]["test_macro_f1"]
    assert f"full pool: test macro-F1 {full:.3f}" in text
    assert all(f"| {strategy} |" in text for strategy in STRATEGIES) and "N = 50" in text
    before = (output / "runs.jsonl").read_text()
    assert simulate(probe_config(output), "probe", SEEDS, START, STEP, BUDGET) == text
    assert (output / "runs.jsonl").read_text() == before


def test_rounds_written_before_an_option_existed_are_reused_where_it_has_its_default(simulation, tmp_path):
    output, text, _ = simulation
    older = "".join(json.dumps({**row, "settings": {k: v for k, v in row["settings"].items() if k != "frozen_layers"}})
                    + "\n" for row in map(json.loads, (output / "runs.jsonl").read_text().splitlines()))
    (tmp_path / "runs.jsonl").write_text(older)
    assert simulate(probe_config(tmp_path), "probe", SEEDS, START, STEP, BUDGET) == text
    assert (tmp_path / "runs.jsonl").read_text() == older  # nothing trained again


def test_a_rerun_with_another_recipe_trains_that_recipe_and_keeps_the_first_ones_rounds(tmp_path):
    output = tmp_path / "active"
    simulate(probe_config(output), "probe", 1, START, STEP, START)
    text = simulate(probe_config(output), "small:max_steps=1", 1, START, STEP, START)
    rows = [json.loads(line) for line in (output / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["recipe"] for r in rows if r["strategy"] == "least-certain") == ["probe", "small:max_steps=1"]
    assert "small:max_steps=1" in text


def test_a_rerun_trains_again_the_rounds_of_a_recipe_that_changed_since(tmp_path, monkeypatch):
    output = tmp_path / "active"
    simulate(probe_config(output), "small:max_steps=1", 1, START, STEP, START)
    monkeypatch.setattr("train.recipes.SMALL", {**SMALL, "learning_rate": 5e-5})
    simulate(probe_config(output), "small:max_steps=1", 1, START, STEP, START)
    rows = [json.loads(line) for line in (output / "runs.jsonl").read_text().splitlines()]
    assert [r["settings"]["learning_rate"] for r in rows if r["strategy"] == "least-certain"] == [1e-4, 5e-5]


def test_only_the_strategies_asked_for_are_simulated(tmp_path):
    output = tmp_path / "active"
    text = simulate(probe_config(output), "probe", 1, START, STEP, START + STEP, strategies=("diverse",))
    rows = [json.loads(line) for line in (output / "runs.jsonl").read_text().splitlines()]
    assert {r["strategy"] for r in rows} == {"full", "diverse"}
    assert "| diverse |" in text and "| random |" not in text and "random's" not in text


def test_diverse_takes_one_sentence_from_each_cluster_of_the_least_certain():
    """Three tight groups; the three least certain candidates all lie in the first: least-certain
    would take all three from it, diverse takes one from each group."""
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    group = np.array([0, 0, 0, 1, 1, 2, 2, 0, 1, 2])
    embeddings = centres[group] + rng.normal(scale=0.1, size=(len(group), 3))
    candidates = np.arange(100, 110)  # positions in the pool, least certain first
    chosen = spread_out(candidates, np.ones(len(group)), embeddings, 3, np.random.default_rng(1))
    assert sorted(group[chosen - 100]) == [0, 1, 2]


def test_diverse_fills_the_step_with_the_least_certain_where_sentences_repeat():
    """Five copies of one sentence leave one cluster; the step is still filled, least certain first."""
    chosen = spread_out(np.arange(5), np.ones(5), np.ones((5, 3)), 3, np.random.default_rng(1))
    assert sorted(chosen) == [0, 1, 2]


def test_a_start_larger_than_the_pool_is_one_line_and_nothing_is_written(tmp_path):
    with pytest.raises(UserError, match="--start must be between 1 and the pool's"):
        simulate(probe_config(tmp_path / "active"), "probe", 1, 10_000, STEP, BUDGET)
    assert not (tmp_path / "active").exists()


def test_the_command_trains_the_recipe_it_is_given(tmp_path):
    """--round_recipe is the command's own option: `recipe` is a training option of its own."""
    output = tmp_path / "active"
    result = subprocess.run([sys.executable, "-m", "eval.active_learning", "--config", "configs/smoke.yaml",
                             "--model_name_or_path", packaged_encoder_path(), "--round_recipe", "probe",
                             "--seeds", "1", "--start", "20", "--step", "20", "--budget", "40",
                             "--output_dir", str(output)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    recipes = {json.loads(line)["recipe"] for line in (output / "runs.jsonl").read_text().splitlines()}
    assert recipes == {"probe"} and "| least-certain |" in result.stdout
