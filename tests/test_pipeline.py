"""Train -> evaluate -> predict -> load with plain transformers.pipeline, on the tiny model."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from transformers import pipeline

from conftest import LABELS, REPO, SEED_EXPORT
from tagger import artifacts
from tagger.cli import UserError
from tagger.labels import DEFAULT
from tagger.predictor import Tagger
from train import output
from train.config import load_config
from train.run import LOWEST_SHARE_CUT, run


def smoke_config(output_dir, *options):
    return load_config(["--config", str(REPO / "configs/smoke.yaml"), "--output_dir", str(output_dir), *options])


def cli(*args, check=True):
    result = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def assert_one_layout(metrics: dict, splits: set, systems: set) -> None:
    """Every metrics.json, whichever command wrote it: model, data, splits -> systems -> report."""
    assert {"model", "data", "splits"} <= set(metrics) and set(metrics["splits"]) == splits
    for split in metrics["splits"].values():
        assert split["sentences"] > 0 and set(split["systems"]) == systems
        for system in split["systems"].values():
            assert set(system["per_class"]) == set(LABELS) and "f1" in system["macro"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("run") / "smoke"
    cli("train", "--config", "configs/smoke.yaml", "--output_dir", str(output))
    return output


def test_the_model_folder_describes_itself(model_dir):
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "thresholds.json", "metrics.json",
            "run_info.json", "train_config.yaml", "README.md"} <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)  # no pickles
    assert not output.staging_dir(model_dir).exists()
    info = json.loads((model_dir / "run_info.json").read_text())
    assert info["base_model"] == "scratch:tiny-distilbert" and len(info["data_fingerprint"]) == 64
    assert sum(info["split_sizes"].values()) == 165
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert_one_layout(metrics, {"validation", "test"}, {"model"})
    assert metrics["splits"]["test"]["sentences"] == info["split_sizes"]["test"]
    assert "claims reported in news, not verified facts" in (model_dir / "README.md").read_text()


def test_plain_pipeline_gives_the_predictors_sigmoid_scores(model_dir):
    texts = ["Russian troops withdrew from Kherson.", "A missile hit a depot in Dnipro overnight."]
    tagger = pipeline("text-classification", model=str(model_dir), top_k=None)
    by_pipeline = [{d["label"]: d["score"] for d in row} for row in tagger(texts)]
    by_predictor = Tagger(model_dir, mode="fp32").scores(texts)
    assert all(set(row) == set(LABELS) for row in by_pipeline)
    np.testing.assert_allclose([[row[label] for label in LABELS] for row in by_pipeline], by_predictor, atol=1e-5)


def test_eval_command_prints_the_table_and_writes_metrics(model_dir, tmp_path):
    result = cli("eval", "--model", str(model_dir), "--data", str(SEED_EXPORT), "--split", "test",
                 "--output-dir", str(tmp_path))
    assert "macro avg" in result.stdout and "atrocity_claim" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert_one_layout(metrics, {"test"}, {"model"})
    scored = metrics["splits"]["test"]["systems"]["model"]
    saved = json.loads((model_dir / "metrics.json").read_text())["splits"]["test"]["systems"]["model"]
    for label in LABELS:  # the test split rebuilt by eval is the one training reported on
        assert scored["per_class"][label] == pytest.approx(saved["per_class"][label])
    assert {"micro", "macro", "weighted"} <= set(scored)


def test_eval_command_scores_in_the_mode_asked_for(model_dir, tmp_path):
    from tagger.onnx_runtime import INT8, cached_path
    cli("eval", "--model", str(model_dir), "--data", str(SEED_EXPORT), "--split", "test", "--mode", "onnx-int8",
        "--output-dir", str(tmp_path))
    assert json.loads((tmp_path / "metrics.json").read_text())["mode"] == "onnx-int8"
    assert cached_path(model_dir, INT8).is_file()  # the int8 model was built and used


def test_predict_command_on_lines_jsonl_and_articles(model_dir, tmp_path):
    lines = tmp_path / "s.txt"
    lines.write_text("Troops withdrew.\n\nBuses left the city.\n")
    cli("eval.predict", "--model", str(model_dir), "--input", str(lines), "--output", str(tmp_path / "a.jsonl"))
    rows = [json.loads(l) for l in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["Troops withdrew.", "Buses left the city."]
    thresholds = json.loads((model_dir / "thresholds.json").read_text())
    for row in rows:
        assert set(row["scores"]) == set(LABELS)
        for label in LABELS:  # scores are rounded to 5 decimals in the file
            if abs(row["scores"][label] - thresholds[label]) > 1e-5:
                assert (label in row["labels"]) == (row["scores"][label] > thresholds[label])

    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text(json.dumps({"text": "Kyiv was shelled.", "id": 1}) + "\n")
    cli("eval.predict", "--model", str(model_dir), "--input", str(jsonl), "--output", str(tmp_path / "b.jsonl"))
    assert json.loads((tmp_path / "b.jsonl").read_text())["text"] == "Kyiv was shelled."

    cli("eval.predict", "--model", str(model_dir), "--input", str(REPO / "seeds/001_08d637ee574c98ec.txt"),
        "--format", "articles", "--output", str(tmp_path / "c.jsonl"))
    rows = [json.loads(l) for l in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [r["sentence_index"] for r in rows] == list(range(len(rows))) and len(rows) > 10


def test_an_existing_model_is_not_overwritten_unless_asked(model_dir):
    result = cli("train", "--config", "configs/smoke.yaml", "--output_dir", str(model_dir), check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {model_dir} already holds a model")


def test_a_crash_while_saving_leaves_no_folder_that_looks_complete(tmp_path, monkeypatch):
    def crash(*args):
        raise RuntimeError("disk full")
    monkeypatch.setattr(artifacts, "model_card", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        run(smoke_config(tmp_path / "m", "--max_steps", "2"))
    assert not (tmp_path / "m").exists()


def test_bad_input_gives_one_line_and_no_traceback(tmp_path):
    result = cli("train", "--config", "configs/smoke.yaml", "--data_files", str(tmp_path / "missing.json"),
                 "--output_dir", str(tmp_path / "out"), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'missing.json'}: file not found"
    assert not (tmp_path / "out").exists()


def test_predict_refuses_a_folder_without_thresholds(model_dir, tmp_path):
    shutil.copytree(model_dir, tmp_path / "model")
    (tmp_path / "model" / "thresholds.json").unlink()
    with pytest.raises(UserError, match="thresholds.json: missing"):
        Tagger(tmp_path / "model")
    with pytest.raises(UserError, match="not a model folder written by `python -m train`"):
        Tagger(tmp_path)


def test_report_puts_the_model_and_baselines_side_by_side(model_dir, tmp_path):
    cli("eval.report", "--model", str(model_dir), "--output-dir", str(tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    systems = metrics["splits"]["test"]["systems"]
    assert_one_layout(metrics, {"test"}, {"model", "always none", "keyword rules", "TF-IDF + logistic regression"})
    assert systems["always none"]["micro"]["f1"] == 0
    for system in systems.values():
        for label in LABELS:
            low, high = system["ci95"][label]
            assert low <= system["per_class"][label]["f1"] <= high
    assert (tmp_path / "pr_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "| margin over TF-IDF |" in (tmp_path / "report.md").read_text()
    for row in map(json.loads, (tmp_path / "errors.jsonl").read_text().splitlines()):
        assert row["false_positives"] or row["false_negatives"]


def test_cross_validation_reports_mean_and_spread_per_class(tmp_path):
    result = cli("eval.crossval", "--config", "configs/smoke.yaml", "--folds", "3", "--output_dir", str(tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    systems = {"model", "TF-IDF + logistic regression", "model, cross-fitted thresholds"}
    assert_one_layout(metrics, {"fold-0 test", "fold-1 test", "fold-2 test"}, systems)
    assert sum(split["sentences"] for split in metrics["splits"].values()) == 165  # each sentence tested once
    summary = metrics["summary"]
    assert set(summary) == systems
    for system in summary.values():
        for name in (*LABELS, "macro"):
            assert len(system[name]["folds"]) == 3
            assert system[name]["mean"] == pytest.approx(np.mean(system[name]["folds"]))
    assert "3-fold cross-validation" in result.stdout
    thresholds = json.loads((tmp_path / "thresholds.json").read_text())
    assert set(thresholds) == set(LABELS) and thresholds == metrics["cross_fitted_thresholds"]
    # --resume takes the folds already trained with the same options on the same data.
    again = cli("eval.crossval", "--config", "configs/smoke.yaml", "--folds", "3", "--output_dir", str(tmp_path),
                "--resume", "true")
    assert again.stderr.count("Reusing") == 3 and "Fold 3 of 3" in again.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["summary"] == metrics["summary"]
    rows = [json.loads(line) for line in (tmp_path / "out_of_fold.jsonl").read_text().splitlines()]
    assert len(rows) == 165 and len({row["task"] for row in rows}) == 165 and {row["fold"] for row in rows} == {0, 1, 2}
    assert all(set(row["predicted"]) == systems for row in rows)
    # Pooled over folds: every test sentence once, an interval around each F1.
    for system, pooled in metrics["pooled"].items():
        for label in LABELS:
            tp, fp, fn = (sum((label in row["labels"]) == gold and (label in row["predicted"][system]) == predicted
                              for row in rows) for gold, predicted in ((True, True), (False, True), (True, False)))
            assert pooled["per_class"][label]["f1"] == pytest.approx(2 * tp / max(2 * tp + fp + fn, 1))
            low, high = pooled["ci95"][label]
            assert low <= pooled["per_class"][label]["f1"] <= high
    assert "Every fold's test sentences together" in result.stdout
    epochs = metrics["best_epochs"]
    assert len(epochs) == 3 and all(1 <= e <= 3 for e in epochs) and "Best epoch per fold" in result.stdout
    # Distilling: fold k's student learns from fold k's teacher; a teacher of other folds is refused.
    student = cli("eval.crossval", "--config", "configs/smoke.yaml", "--folds", "3", "--teacher", str(tmp_path),
                  "--output_dir", str(tmp_path / "student"))
    assert [f"Distilling from {tmp_path / f'fold-{k}'}:" in student.stderr for k in range(3)] == [True] * 3
    other = cli("eval.crossval", "--config", "configs/smoke.yaml", "--folds", "3", "--validation_fraction", "0.4",
                "--teacher", str(tmp_path), "--output_dir", str(tmp_path / "other"), check=False)
    assert other.returncode == 1 and "fold-0: trained on other splits than fold 0 here" in other.stderr


def test_leaving_outlets_out_tests_each_fold_on_its_outlets_only(tmp_path):
    tasks = json.loads(SEED_EXPORT.read_text())
    # One outlet per seed article; each fold leaves articles that carry every label for training.
    outlets = {"000": "A", "001": "B", "002": "E", "003": "C", "004": "D"}
    for task in tasks:
        task["data"]["source"] = outlets[task["data"]["article_id"][:3]]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    result = cli("eval.crossval", "--config", "configs/smoke.yaml", "--data_files", str(tmp_path / "export.json"),
                 "--outlet_folds", "B,E", "C", "--output_dir", str(tmp_path / "cv"))
    metrics = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    by_outlet = {o: sum(t["data"]["source"] == o for t in tasks) for o in "ABCDE"}
    assert [metrics["splits"][f"fold-{k} test"]["sentences"] for k in (0, 1)] == [by_outlet["B"] + by_outlet["E"],
                                                                                   by_outlet["C"]]
    assert "Leave outlets out (B,E, C)" in result.stdout


def test_training_with_thresholds_from_a_file_uses_them(tmp_path):
    given = dict(zip(LABELS, (0.3, 0.4, 0.6, 0.7)))
    (tmp_path / "thresholds.json").write_text(json.dumps(given))
    cli("train", "--config", "configs/smoke.yaml", "--thresholds", str(tmp_path / "thresholds.json"),
        "--output_dir", str(tmp_path / "model"))
    assert json.loads((tmp_path / "model" / "thresholds.json").read_text()) == given
    bad = cli("train", "--config", "configs/smoke.yaml", "--thresholds", str(tmp_path / "none.json"),
              "--output_dir", str(tmp_path / "other"), check=False)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].endswith("none.json: no such thresholds file")
    assert "train_runtime" not in bad.stderr  # stopped before training


def test_without_validation_a_run_trains_every_epoch_with_the_given_thresholds(tmp_path):
    refused = cli("train", "--config", "configs/smoke.yaml", "--validation_fraction", "0",
                  "--output_dir", str(tmp_path / "none"), check=False)
    assert refused.returncode == 1 and "give the thresholds with --thresholds" in refused.stderr
    given = dict(zip(LABELS, (0.3, 0.4, 0.6, 0.7)))
    (tmp_path / "thresholds.json").write_text(json.dumps(given))
    result = cli("train", "--config", "configs/smoke.yaml", "--validation_fraction", "0", "--thresholds",
                 str(tmp_path / "thresholds.json"), "--output_dir", str(tmp_path / "model"))
    model = tmp_path / "model"
    info = json.loads((model / "run_info.json").read_text())
    assert info["split_sizes"]["validation"] == 0 and info["best_epoch"] is None
    assert info["split_sizes"]["train"] + info["split_sizes"]["test"] == 165
    assert "'epoch': '3'" in result.stdout  # all of num_train_epochs: nothing to stop early on
    assert json.loads((model / "thresholds.json").read_text()) == given
    assert set(json.loads((model / "metrics.json").read_text())["splits"]) == {"test"}
    assert "thresholds from `thresholds.json`, given to the run" in (model / "README.md").read_text()
    # Cross-validated the same way: the cross-fitted row estimates such a model.
    cli("eval.crossval", "--config", "configs/smoke.yaml", "--folds", "3", "--validation_fraction", "0",
        "--output_dir", str(tmp_path / "cv"))
    assert json.loads((tmp_path / "cv" / "fixed-thresholds.json").read_text()) == dict.fromkeys(LABELS, 0.5)
    metrics = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    assert metrics["best_epochs"] == [None] * 3
    assert sum(split["sentences"] for split in metrics["splits"].values()) == 165


def test_cross_validating_the_small_recipe_scores_each_fold_with_its_own_thresholds(tmp_path):
    """As `python -m train --recipe small` would save them: lower for a label with few training positives."""
    cli("eval.crossval", "--config", "configs/smoke.yaml", "--folds", "3", "--recipe", "small", "--min_steps", "2",
        "--num_train_epochs", "1", "--output_dir", str(tmp_path))
    assert not (tmp_path / "fixed-thresholds.json").exists()
    for fold in range(3):
        model = tmp_path / f"fold-{fold}"
        info = json.loads((model / "run_info.json").read_text())
        positives, sentences = info["split_label_counts"]["train"], info["split_sizes"]["train"]
        by_count = {label: 0.5 * min(1, n / 15) for label, n in positives.items()}
        assert json.loads((model / "thresholds.json").read_text()) == pytest.approx({
            label: max(cut * min(1, positives[label] / sentences / 0.05) ** 2, min(cut, LOWEST_SHARE_CUT))
            for label, cut in by_count.items()}, rel=1e-3)


def test_debug_shows_the_traceback(tmp_path):
    result = cli("train", "--config", "configs/smoke.yaml", "--data_files", str(tmp_path / "missing.json"),
                 "--output_dir", str(tmp_path / "out"), "--debug", check=False)
    assert result.returncode == 1 and "Traceback" in result.stderr and "ExportError" in result.stderr


def test_evaluating_every_sentence_resolves_ties_as_in_training(model_dir, tmp_path, write_export):
    from conftest import annotation, task
    from eval.__main__ import evaluation_rows
    export = write_export([task(1, "Troops pulled back.", annotation("withdrawal"), annotation())])
    trained_negative = evaluation_rows(model_dir, DEFAULT, [str(export)], "all")[1]
    (tmp_path / "positive").mkdir()
    options = (model_dir / "train_config.yaml").read_text().replace("tie_break: negative", "tie_break: positive")
    (tmp_path / "positive" / "train_config.yaml").write_text(options)
    trained_positive = evaluation_rows(tmp_path / "positive", DEFAULT, [str(export)], "all")[1]
    withdrawal = LABELS.index("withdrawal")
    assert trained_negative[0][withdrawal] == 0 and trained_positive[0][withdrawal] == 1


def test_tagger_gives_the_labels_and_scores_that_predict_writes(model_dir, tmp_path):
    from tagger import Tagger
    texts = (REPO / "data" / "sample_sentences.txt").read_text().splitlines()
    cli("eval.predict", "--model", str(model_dir), "--input", str(REPO / "data" / "sample_sentences.txt"),
        "--output", str(tmp_path / "p.jsonl"))
    written = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    tagged = Tagger.from_pretrained(model_dir).tag(texts)
    assert [t["text"] for t in tagged] == [w["text"] for w in written] == texts
    assert [t["labels"] for t in tagged] == [w["labels"] for w in written]
    thresholds = json.loads((model_dir / "thresholds.json").read_text())
    for t, w in zip(tagged, written):
        assert t["scores"] == pytest.approx(w["scores"], abs=1e-5)
        assert t["labels"] == [label for label in LABELS if t["scores"][label] >= thresholds[label]]
    assert Tagger.from_pretrained(model_dir).tag(texts[0]) == tagged[0]  # one string, one dict
