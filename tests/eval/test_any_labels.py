"""The evaluation harness on a project with its own labels: every command takes the labels, their
order and the text field from the model folder, for any number of labels."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIVE_LABELS, REPO
from eval import plots
from eval.bench import bench_sentences
from eval.report import bootstrap_f1
from tagger.labels import of_model
from tagger.metrics import apply_thresholds, report


def cli(*args):
    result = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_eval_and_report_show_every_label_of_the_project(five_label_model, tmp_path):
    table = cli("eval", "--model", five_label_model, "--split", "test", "--output_dir", tmp_path / "eval").stdout
    assert all(label in table for label in FIVE_LABELS)
    shown = cli("eval.report", "--model", five_label_model, "--output_dir", tmp_path / "report").stdout
    assert "| system | withdrawal | strike | evacuation | atrocity_claim | ceasefire | macro-F1 |" in shown
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(metrics["splits"]["test"]["systems"]["model"]["ci95"]) == {*FIVE_LABELS, "macro"}
    assert (tmp_path / "report" / "pr_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_crossval_and_predict_on_the_projects_labels(five_label_model, tmp_path):
    options = of_model(five_label_model)
    data = (five_label_model.parent / "my_export.json", five_label_model.parent / "my_export.label_config.xml")
    shown = cli("eval.crossval", "--config", "configs/smoke.yaml", "--data_files", data[0], "--label_config", data[1],
                "--folds", "3", "--output_dir", tmp_path / "cv").stdout
    assert "| system | withdrawal | strike | evacuation | atrocity_claim | ceasefire | macro-F1 |" in shown
    row = json.loads((tmp_path / "cv" / "out_of_fold.jsonl").read_text().splitlines()[0])
    assert list(row["scores"]) == list(FIVE_LABELS) and options.labels == FIVE_LABELS
    (tmp_path / "in.txt").write_text("Both sides agreed to a ceasefire.\nA missile hit a depot.\n")
    cli("eval.predict", "--model", five_label_model, "--input", tmp_path / "in.txt", "--output", tmp_path / "out.jsonl")
    tagged = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [list(t["scores"]) for t in tagged] == [list(FIVE_LABELS)] * 2


def test_the_bench_reads_labelled_sentences_with_the_models_labels(five_label_model):
    texts, gold = bench_sentences([str(five_label_model.parent / "my_export.json")], 10, of_model(five_label_model))
    assert len(texts) == 10 and all(len(row) == 5 for row in gold)


@pytest.mark.parametrize("count", [2, 12])
def test_tables_intervals_and_plots_for_any_number_of_labels(count, tmp_path):
    labels = [f"label_{i}" for i in range(count)]
    rng = np.random.default_rng(count)
    gold, scores = rng.integers(0, 2, (80, count)), rng.random((80, count))
    thresholds = dict.fromkeys(labels, 0.5)
    predicted = apply_thresholds(scores, thresholds)
    result = {**report(gold, predicted, labels), "ci95": bootstrap_f1(gold, predicted, labels, rounds=50)}
    assert list(result["per_class"]) == labels and set(result["ci95"]) == {*labels, "macro"}
    plots.pr_curves(gold, scores, thresholds, tmp_path / "pr.png")
    plots.co_occurrence(gold.T @ gold, labels, tmp_path / "co.png")
    assert (tmp_path / "pr.png").stat().st_size > 1000 and (tmp_path / "co.png").stat().st_size > 1000
