"""The label audit: confident learning on out-of-fold scores finds flipped labels, the command writes
its suspects, and --push makes a review tab in a real Label Studio project."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from conftest import NEWS_EXPORT, REPO, SEED_EXPORT
from eval.audit import baseline_suspects, rank_suspects
from eval.audit_flips import draw_flips, flipped_copy, precision_recall
from tagger.annotations import read_export
from tagger.labels import DEFAULT
from train.model import packaged_encoder_path


def test_flipped_labels_rank_above_clean_ones():
    rng = np.random.default_rng(0)
    truth = (rng.random((600, 3)) < 0.2).astype(int)
    scores = np.clip(np.where(truth == 1, 0.8, 0.1) + rng.normal(0, 0.1, truth.shape), 0.001, 0.999)
    flips = [(i, k) for k in range(3) for i in rng.choice(600, 12, replace=False)]
    gold = truth.copy()
    for i, k in flips:
        gold[i, k] = 1 - gold[i, k]
    pairs = rank_suspects(gold, scores)
    flagged = {(i, k) for i, k, _ in pairs}
    found = len(flagged & set(flips))
    assert found >= 0.7 * len(flips) and found >= 0.9 * len(flagged)  # most flips, and little else
    assert [s for _, _, s in pairs] == sorted((s for _, _, s in pairs), reverse=True)
    baseline = baseline_suspects(gold, scores)
    assert {(i, k) for i, k, _ in baseline} == {(i, k) for i in range(600) for k in range(3)
                                                 if abs(gold[i, k] - scores[i, k]) > 0.5}
    assert [d for _, _, d in baseline] == sorted((d for _, _, d in baseline), reverse=True)


def test_flipped_copies_change_exactly_the_drawn_labels(tmp_path):
    sentences, _ = read_export(SEED_EXPORT, DEFAULT)
    flips = draw_flips(sentences, DEFAULT, positives=0.1, negatives=0.05, seed=3)
    assert len(flips) == len(set(flips)) > 10
    flipped_copy(SEED_EXPORT, set(flips), DEFAULT, tmp_path / "copy.json")
    before = {s.task.split("#")[1]: set(s.labels) for s in sentences}
    after = {s.task.split("#")[1]: set(s.labels) for s in read_export(tmp_path / "copy.json", DEFAULT)[0]}
    changed = {(task, label) for task in before for label in before[task] ^ after[task]}
    assert changed == {(ref.split("#")[1], label) for ref, label in flips}
    assert precision_recall({("a", "strike"), ("b", "strike")}, {("a", "strike")}, ["strike"])["strike"] == {
        "flips": 1, "flagged": 2, "found": 1, "precision": 0.5, "recall": 1.0}


def cli(*args, env=None):
    result = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_audit_writes_its_suspects_and_reuses_the_cross_validation(tmp_path):
    first = cli("eval.audit", "--config", "configs/smoke.yaml", "--folds", "3", "--output_dir", tmp_path)
    suspects = [json.loads(line) for line in (tmp_path / "suspects.jsonl").read_text().splitlines()]
    assert suspects and [s["suspicion"] for s in suspects] == sorted((s["suspicion"] for s in suspects), reverse=True)
    tasks = {t["id"]: t for t in json.loads(SEED_EXPORT.read_text())}
    for s in suspects:
        task = tasks[s["task_id"]]
        assert s["text"] == task["data"]["text"] and s["article_id"] == task["data"]["article_id"]
        assert s["annotation_ids"] == [a["id"] for a in task["annotations"]]
        assert (s["suspect_label"] in s["labels"]) == (s["suspected"] == "given, likely absent")
        assert set(s["scores"]) == set(DEFAULT.labels) and "fold" in s and "annotators" in s
    assert "| label | sentences with it | suspects |" in first.stdout and "## withdrawal: top 25" in first.stdout
    assert "Fold 1 of 3" in first.stderr
    table = (tmp_path / "audit.md").read_text()
    again = cli("eval.audit", "--config", "configs/smoke.yaml", "--folds", "3", "--output_dir", tmp_path)
    assert "Cross-validating" not in again.stderr and (tmp_path / "audit.md").read_text() == table


@pytest.mark.slow
def test_on_a_small_slice_injected_flips_rank_above_clean_sentences(tmp_path):
    """600 sentences of batch 1, labels flipped on purpose, audited with the packaged MiniLM-L6."""
    (tmp_path / "slice.json").write_text(json.dumps(json.loads(NEWS_EXPORT.read_text())[:600]))
    cli("eval.audit_flips", "--config", "configs/smoke.yaml", "--data_files", tmp_path / "slice.json",
        "--model_name_or_path", packaged_encoder_path(), "--learning_rate", "1e-4", "--num_train_epochs", "3",
        "--per_device_train_batch_size", "16", "--positives", "0.1", "--negatives", "0.02", "--folds", "3",
        "--output_dir", tmp_path / "flips")
    flips = {tuple(pair) for pair in json.loads((tmp_path / "flips" / "flips.json").read_text())}
    rows = [json.loads(line) for line in (tmp_path / "flips" / "crossval" / "out_of_fold.jsonl").read_text().splitlines()]
    pairs = [((row["task"], label), abs(float(label in row["labels"]) - score))
             for row in rows for label, score in row["scores"].items()]
    flipped = [pair in flips for pair, _ in pairs]
    assert sum(flipped) == len(flips) > 20
    assert roc_auc_score(flipped, [distance for _, distance in pairs]) > 0.75  # flips rank above clean pairs
    results = json.loads((tmp_path / "flips" / "flips_results.json").read_text())
    found = sum(r["found"] for r in results["audit"].values())
    flagged = sum(r["flagged"] for r in results["audit"].values())
    assert found >= 0.3 * len(flips) and found / flagged > 3 * len(flips) / len(pairs)  # far better than chance
    assert "| label | flips | audit: flagged |" in (tmp_path / "flips" / "flips.md").read_text()


@pytest.mark.labelstudio
def test_push_makes_one_review_tab_of_the_suspects_and_changes_no_annotation(server, keys, client, tmp_path):
    from ml_backend import annotated_seed_project
    project_id = annotated_seed_project(client, "audit")
    env = {"LABEL_STUDIO_API_KEY": keys[0]}
    cli("labelstudio", "export", "--url", server.url, "--project", project_id, "--output", tmp_path / "e.json", env=env)
    for _ in range(2):  # again: the tab is replaced, not added
        cli("eval.audit", "--config", "configs/smoke.yaml", "--data_files", tmp_path / "e.json", "--folds", "3",
            "--output_dir", tmp_path / "audit", "--push", "--url", server.url, "--project", project_id, env=env)
    views = [v for v in client.views.list(project=project_id) if v.data["title"] == "Review: likely label errors"]
    assert len(views) == 1
    suspects = [json.loads(line) for line in (tmp_path / "audit" / "suspects.jsonl").read_text().splitlines()]
    listed = {t.id for t in client.tasks.list(project=project_id, view=views[0].id)}
    assert listed == {s["task_id"] for s in suspects} and listed
    cli("labelstudio", "export", "--url", server.url, "--project", project_id, "--output", tmp_path / "after.json",
        env=env)
    annotations = [[(a["id"], a["result"]) for a in t["annotations"]] for t in json.loads((tmp_path / "e.json").read_text())]
    assert [[(a["id"], a["result"]) for a in t["annotations"]]
            for t in json.loads((tmp_path / "after.json").read_text())] == annotations
