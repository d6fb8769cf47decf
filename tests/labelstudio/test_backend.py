"""The Label Studio ML backend (`python -m labelstudio serve`), always as the real server
process: first its protocol and bad requests, then connected to a real Label Studio server that
asks it for predictions and for training."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

import labelstudio_server
from conftest import LABELS, REPO, SEED_EXPORT
from ml_backend import annotated_seed_project, connect, retrieve_predictions, start_backend
from labelstudio.backend import Serving
from labelstudio.predictions import certainty
from labelstudio.retrain import Retraining
from tagger.predictor import Tagger

LABEL_CONFIG = (REPO / "data" / "label_config.xml").read_text()
OTHER_CONFIG = LABEL_CONFIG.replace('"evacuation"', '"evac"')
SENTENCES = ["Russian troops withdrew from the city overnight.", "A missile struck a school in Kharkiv.",
             "Residents were evacuated by bus.", "The weather was mild."]


@pytest.fixture(scope="module")
def backend(smoke_model, tmp_path_factory):
    started = start_backend(smoke_model, tmp_path_factory.mktemp("backend") / "backend.log",
                            env={"LABEL_STUDIO_URL": ""})
    yield started
    started.process.terminate()
    started.process.wait(30)


def choices(prediction) -> list[str]:
    return [c for result in prediction["result"] for c in result["value"]["choices"]]


def test_health_setup_and_predict_answer_as_label_studio_expects(backend, smoke_model):
    health = backend.get("/health").json()
    assert health["status"] == "UP" and health["model_class"] and backend.get("/").json() == health
    setup = backend.post("/setup", {"project": "1.1700000000", "schema": LABEL_CONFIG})
    assert setup.status_code == 200 and setup.json() == {"model_version": smoke_model.name}
    answer = backend.post("/predict", {"tasks": [{"id": i, "data": {"text": t, "title": "x"}, "annotations": []}
                                                 for i, t in enumerate(SENTENCES)],
                                       "project": "1.1700000000", "label_config": LABEL_CONFIG, "params": {}})
    results = answer.json()["results"]
    tagger = Tagger(smoke_model, mode="fp32")
    scores = tagger.scores(SENTENCES)
    assert [choices(r) for r in results] == tagger.labels(scores)  # batched in one request, same as the Tagger
    assert [r["score"] for r in results] == pytest.approx(certainty(scores, tagger.thresholds), abs=1e-4)
    assert {r["model_version"] for r in results} == {smoke_model.name}
    assert all(r["result"] == [] or r["result"][0]["from_name"] == "event" for r in results)


@pytest.mark.parametrize("path, body, status, reason", [
    ("/predict", b"{not json", 400, "the body is not a JSON object"),
    ("/predict", b'["a list"]', 400, "the body is not a JSON object"),
    ("/predict", b'{"tasks": "Kyiv"}', 400, 'expected {"tasks": [...]}'),
    ("/predict", b'{"tasks": [{"id": 1, "data": {"text": "ok"}}, {"id": 7, "data": {"title": "no text"}}]}', 400,
     "task 1 (id 7): no text in data.text"),
    ("/predict", b'{"tasks": [{"data": {"text": 5}}]}', 400, "task 0: no text in data.text"),
    ("/predict", json.dumps({"tasks": [{"data": {"text": "x"}}], "label_config": OTHER_CONFIG}).encode(), 422,
     "the model cannot tag ['evac']"),
    ("/setup", json.dumps({"project": "4.1", "schema": OTHER_CONFIG}).encode(), 422,
     "project 4.1: the model cannot tag ['evac'] of control 'event'"),
    ("/setup", json.dumps({"project": "4.1", "schema": "<View><Choices"}).encode(), 422, "not a valid labeling config"),
    ("/webhook", b'{"action": "START_TRAINING", "project": 3}', 400, "START_TRAINING without project.id"),
    ("/nowhere", b"{}", 404, "404 Not Found"),
])
def test_a_bad_request_gets_a_4xx_with_one_line_and_the_server_keeps_serving(backend, path, body, status, reason):
    answer = requests.post(backend.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert reason in error and "\n" not in error
    assert backend.predict(SENTENCES[:2]).status_code == 200


def test_an_oversized_request_is_refused(backend):
    from labelstudio.backend import MAX_REQUEST_BYTES
    body = b'{"tasks": [' + b" " * MAX_REQUEST_BYTES + b"]}"
    answer = requests.post(backend.url + "/predict", data=body, headers={"Content-Type": "application/json"},
                           timeout=120)
    assert answer.status_code == 413 and "413 Request Entity Too Large" in answer.json()["error"]
    assert backend.predict(SENTENCES).status_code == 200


def test_other_webhook_events_are_answered_at_once_and_ignored(backend):
    for action in ("ANNOTATION_CREATED", "TASKS_CREATED", "PROJECT_UPDATED"):
        answer = backend.post("/webhook", {"action": action, "project": {"id": 1}})
        assert answer.status_code == 200 and answer.json() == {"status": "ignored"}
    assert backend.get("/metrics").json()["last_training"] is None


def test_basic_auth_from_the_environment(smoke_model, run_backend):
    secured = run_backend(smoke_model, env={"BASIC_AUTH_USER": "ls", "BASIC_AUTH_PASS": "s3cret-pass"})
    assert requests.get(secured.url + "/health", timeout=10).status_code == 401
    assert secured.predict(SENTENCES, auth=("ls", "wrong")).status_code == 401
    assert secured.predict(SENTENCES, auth=("ls", "s3cret-pass")).status_code == 200
    assert secured.get("/health", auth=("ls", "s3cret-pass")).json()["status"] == "UP"
    assert "s3cret-pass" not in secured.log.read_text()


def test_a_half_set_basic_auth_stops_the_server_with_one_line(smoke_model):
    result = subprocess.run([sys.executable, "-m", "labelstudio", "serve", "--model", str(smoke_model)],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "BASIC_AUTH_USER": "ls"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither"


def test_train_every_n_annotations_counts_per_project(smoke_model, run_backend):
    counting = run_backend(smoke_model, "--train_every", "2", env={"LABEL_STUDIO_URL": ""})
    created = {"action": "ANNOTATION_CREATED", "project": {"id": 1}}
    assert counting.post("/webhook", created).json() == {"status": "counted"}
    assert counting.post("/webhook", {**created, "project": {"id": 2}}).json() == {"status": "counted"}
    assert counting.get("/metrics").json()["last_training"] is None
    assert counting.post("/webhook", {**created, "action": "ANNOTATION_UPDATED"}).json() == {"status": "started"}
    assert counting.last_training()["project"] == 1


def test_a_missing_training_config_stops_the_server_at_once(smoke_model):
    result = subprocess.run([sys.executable, "-m", "labelstudio", "serve", "--model", str(smoke_model),
                             "--config", "configs/nothing.yaml"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: configs/nothing.yaml: no such file (--config / --data_files of serve)"


def test_training_without_a_label_studio_address_fails_and_keeps_serving(backend, smoke_model):
    answer = backend.post("/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
    assert answer.status_code == 201 and answer.json()["status"] == "started"
    last = backend.last_training()
    assert last["status"] == "failed" and last["reason"] == "no Label Studio address: set LABEL_STUDIO_URL"
    assert backend.get("/metrics").json()["model_version"] == smoke_model.name
    assert backend.predict(SENTENCES).json()["results"][0]["model_version"] == smoke_model.name


# --- Connected to a real Label Studio server ---------------------------------------------------

def weak_copy(model: Path, folder: Path) -> Path:
    """The model with thresholds above every score: it tags nothing, so any trained model beats it."""
    weak = folder / "weak"
    shutil.copytree(model, weak)
    (weak / "thresholds.json").write_text(json.dumps({label: 1.01 for label in LABELS}))
    return weak


def test_a_next_batch_tab_that_cannot_be_refreshed_is_one_line_in_the_record_not_a_failed_run(smoke_model):
    serving = Serving(smoke_model, lambda model_dir: Tagger(model_dir, mode="fp32"))
    unreachable = f"http://127.0.0.1:{labelstudio_server.free_port()}"
    retraining = Retraining(serving, REPO / "configs/smoke.yaml", [], unreachable, "a-key")
    outcome = retraining.next_to_annotate(1, "earlier-model")
    assert outcome == {"failed": f"{unreachable}: cannot reach Label Studio (ConnectError)"}


@pytest.mark.labelstudio
def test_label_studio_stores_our_predictions_and_sorts_the_least_certain_first(client, smoke_model, run_backend):
    project_id = annotated_seed_project(client, "retrieve predictions", annotated=False)
    backend = run_backend(smoke_model)
    connect(client, project_id, backend)
    stored = retrieve_predictions(client, project_id)
    tasks = {task.id: task.data["text"] for task in client.tasks.list(project=project_id)}
    assert len(stored) == 165 and all(len(predictions) == 1 for predictions in stored.values())
    tagger = Tagger(smoke_model, mode="fp32")
    ids = sorted(tasks)
    scores = tagger.scores([tasks[i] for i in ids])
    expected = dict(zip(ids, certainty(scores, tagger.thresholds)))
    for task_id, (prediction,) in stored.items():
        assert prediction.model_version == smoke_model.name
        assert prediction.score == pytest.approx(expected[task_id], abs=1e-4)
    view = client.views.create(project=project_id, data={"title": "by score", "ordering": ["tasks:predictions_score"]})
    first = next(iter(client.tasks.list(project=project_id, view=view.id, fields="all")))
    assert expected[first.id] == pytest.approx(min(expected.values()), abs=1e-4)


@pytest.mark.labelstudio
@pytest.mark.slow
def test_start_training_switches_to_a_model_that_is_not_worse(client, smoke_model, run_backend, label_studio_env,
                                                             tmp_path):
    project_id = annotated_seed_project(client, "start training")
    weak = weak_copy(smoke_model, tmp_path)
    backend = run_backend(weak, "--config", "configs/smoke.yaml", env=label_studio_env)
    ml_id = connect(client, project_id, backend)
    assert {p[0].model_version for p in retrieve_predictions(client, project_id).values()} == {"weak"}
    client.ml.train(id=ml_id)  # the "Start Training" button
    again = backend.post("/webhook", {"action": "START_TRAINING", "project": {"id": project_id}})
    assert again.status_code == 201 and again.json()["status"] == "already running"
    last = backend.last_training()
    assert last["status"] == "switched", last
    version = last["model_version"]
    assert version.startswith(f"weak-project{project_id}-") and backend.get("/metrics").json()["model_version"] == version
    compared = last["validation"]
    assert compared["candidate"]["macro"]["f1"] > compared["serving"]["macro"]["f1"] == 0
    assert set(compared["candidate"]["per_class"]) == set(LABELS) and compared["serving_version"] == "weak"
    assert weak.is_dir() and (tmp_path / version / "model.safetensors").is_file()  # the old folder is kept
    assert len(list(tmp_path.glob("weak-project*-*[0-9]"))) == 1  # one run, not two
    versions = {p.model_version for predictions in retrieve_predictions(client, project_id).values() for p in predictions}
    assert versions == {"weak", version}


@pytest.fixture(scope="module")
def minilm_model(tmp_path_factory):
    """The packaged MiniLM-L6 fine-tuned on the seed export: clearly better than the smoke config."""
    from train.model import packaged_encoder_path
    output = tmp_path_factory.mktemp("minilm") / "minilm"
    result = subprocess.run(
        [sys.executable, "-m", "train", "--config", "configs/smoke.yaml", "--model_name_or_path",
         packaged_encoder_path(), "--learning_rate", "1e-4", "--num_train_epochs", "4",
         "--per_device_train_batch_size", "16", "--data_files", str(SEED_EXPORT), "--output_dir", str(output)],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return output


@pytest.mark.labelstudio
@pytest.mark.slow
def test_a_worse_model_is_not_switched_in(client, minilm_model, run_backend, label_studio_env):
    project_id = annotated_seed_project(client, "worse model")
    backend = run_backend(minilm_model, "--config", "configs/smoke.yaml", env=label_studio_env)
    client.ml.train(id=connect(client, project_id, backend))
    last = backend.last_training()
    assert last["status"] == "kept", last
    compared = last["validation"]
    assert compared["candidate"]["macro"]["f1"] < compared["serving"]["macro"]["f1"]
    assert "lower than" in last["reason"] and "of minilm on the same" in last["reason"]
    assert compared["left_out_seen_by_serving_model"] == 0  # same data, same split: nothing to leave out
    assert backend.get("/metrics").json()["model_version"] == "minilm"
    assert (minilm_model.parent / last["model_version"]).is_dir()  # kept on disk, not served


@pytest.mark.labelstudio
@pytest.mark.slow
def test_a_candidate_judged_only_on_sentences_the_serving_model_was_trained_on_is_not_switched_in(
        client, run_backend, label_studio_env, tmp_path):
    """Each run splits its own data: here the serving model was trained on four of the five seed
    articles, and its split put in training the article that the candidate holds out for validation."""
    tasks = json.loads(SEED_EXPORT.read_text())
    subset = tmp_path / "four_articles.json"
    subset.write_text(json.dumps([t for t in tasks if not t["data"]["article_id"].startswith("001_")]))
    serving = tmp_path / "four-articles"
    trained = subprocess.run([sys.executable, "-m", "train", "--config", "configs/smoke.yaml", "--data_files",
                              str(subset), "--output_dir", str(serving)], cwd=REPO, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-3000:]
    project_id = annotated_seed_project(client, "seen before")
    backend = run_backend(serving, "--config", "configs/smoke.yaml", env=label_studio_env)
    client.ml.train(id=connect(client, project_id, backend))
    last = backend.last_training()
    assert last["status"] == "kept" and "no fair comparison" in last["reason"], last
    assert backend.get("/metrics").json()["model_version"] == "four-articles"


@pytest.mark.labelstudio
@pytest.mark.parametrize("case, reason", [
    ("no annotations", "no annotated"),
    ("unreachable", "cannot reach Label Studio"),
    ("wrong key", "the API key was refused"),
])
def test_a_failed_training_run_leaves_the_serving_model(client, smoke_model, run_backend, label_studio_env,
                                                        case, reason):
    project_id = annotated_seed_project(client, case, annotated=case != "no annotations")
    env = dict(label_studio_env)
    if case == "unreachable":
        env["LABEL_STUDIO_URL"] = f"http://127.0.0.1:{labelstudio_server.free_port()}"
    elif case == "wrong key":
        env["LABEL_STUDIO_API_KEY"] = env["LABEL_STUDIO_API_KEY"][:-4] + "AAAA"
    backend = run_backend(smoke_model, "--config", "configs/smoke.yaml", env=env)
    backend.post("/webhook", {"action": "START_TRAINING", "project": {"id": project_id}})
    last = backend.last_training()
    assert last["status"] == "failed" and reason in last["reason"], last
    assert backend.get("/metrics").json()["model_version"] == smoke_model.name
    assert backend.predict(SENTENCES).status_code == 200
    assert env["LABEL_STUDIO_API_KEY"] not in backend.log.read_text()


@pytest.mark.labelstudio
@pytest.mark.slow
def test_load_check_predictions_while_training(client, smoke_model, run_backend, label_studio_env, capsys):
    """A benchmark, not a timed test: concurrent /predict requests of 100 tasks each while a
    training run goes on; every request must be answered in full. Prints the figures.
    LOAD_CHECK_MODEL=models/news serves a real model instead of the smoke one."""
    project_id = annotated_seed_project(client, "load")
    model = Path(os.environ.get("LOAD_CHECK_MODEL", smoke_model)).resolve()
    backend = run_backend(model, "--config", "configs/smoke.yaml", env=label_studio_env)
    batch = ((REPO / "data/sample_sentences.txt").read_text().splitlines() * 100)[:100]
    client.ml.train(id=connect(client, project_id, backend))
    latencies, failures, sent = [], [], []

    def client_loop():
        while backend.get("/metrics").json()["last_training"]["status"] == "running":
            sent.append(1)
            started = time.perf_counter()
            answer = backend.predict(batch)
            latencies.append(time.perf_counter() - started)
            if answer.status_code != 200 or len(answer.json()["results"]) != len(batch):
                failures.append(answer.status_code)
    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    last = backend.last_training()
    assert last["status"] in ("switched", "kept"), last
    assert failures == [] and len(latencies) == len(sent) > 0
    with capsys.disabled():
        p50, p95 = np.percentile(latencies, [50, 95]) * 1000
        print(f"\nload check ({model.name}): {len(latencies)} /predict requests of {len(batch)} tasks from 4 clients during "
              f"{elapsed:.0f} s of training: {len(latencies) / elapsed:.1f} requests/s, p50 {p50:.0f} ms, "
              f"p95 {p95:.0f} ms, 0 errors; the run: {last['status']}")


def first_annotations_project(client, title: str) -> tuple[int, list[dict]]:
    """A new project's first six annotations: one or two sentences per label and one without; the
    other seed sentences are its tasks that no one has annotated yet."""
    gold = json.loads((REPO / "data/seed_labels.json").read_text())
    wanted, tasks, open_tasks = {"withdrawal": 2, "strike": 1, "evacuation": 1, "atrocity_claim": 1, "": 1}, [], []
    for task in json.loads((REPO / "data/seed_tasks.json").read_text()):
        labels = gold[task["data"]["sentence_id"]]
        key = labels[0] if len(labels) == 1 else "" if not labels else None
        if key is not None and wanted.get(key, 0) > 0:
            wanted[key] -= 1
            tasks.append({**task, "annotations": [{"result": [
                {"from_name": "event", "to_name": "text", "type": "choices", "value": {"choices": labels}}]
                if labels else []}]})
        else:
            open_tasks.append(task)
    project_id = client.projects.create(title=title, label_config=LABEL_CONFIG).id
    client.projects.import_tasks(id=project_id, request=tasks + open_tasks)
    return project_id, tasks


@pytest.mark.labelstudio
def test_start_training_on_six_annotations_trains_with_the_small_recipe_and_picks_the_next_batch(
        client, run_backend, label_studio_env, tmp_path):
    """No test split can be held out of six sentences: the candidate trains on all of them and
    serves, having learned from more annotations than the serving model (four of the six)."""
    project_id, tasks = first_annotations_project(client, "first annotations")
    config = tmp_path / "auto.yaml"
    config.write_text(f"base: {REPO / 'configs/smoke.yaml'}\nrecipe: auto\n")
    exported = tmp_path / "four.json"  # one sentence of each label, as an earlier export of the project
    one_each = {task["annotations"][0]["result"][0]["value"]["choices"][0]: task
                for task in reversed(tasks) if task["annotations"][0]["result"]}
    exported.write_text(json.dumps([{"id": i, **task} for i, task in enumerate(one_each.values())]))
    serving = tmp_path / "four-annotations"
    trained = subprocess.run([sys.executable, "-m", "train", "--config", str(config), "--data_files", str(exported),
                              "--output_dir", str(serving)], cwd=REPO,
                             capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-3000:]
    backend = run_backend(serving, "--config", str(config), "--next_batch", "5", env=label_studio_env)
    client.views.create(project=project_id, data={"title": "Next to annotate (four-annotations)"})
    client.ml.train(id=connect(client, project_id, backend))
    last = backend.last_training()
    assert last["status"] == "switched", last
    assert "no held-out sentence to compare on" in last["reason"] and "trained on 6 sentences" in last["reason"]
    candidate = serving.parent / last["model_version"]
    assert json.loads((candidate / "run_info.json").read_text())["split_sizes"] == {"train": 6, "validation": 0,
                                                                                     "test": 0}
    assert backend.get("/metrics").json()["model_version"] == last["model_version"]
    assert_next_batch_follows_the_new_model(client, project_id, candidate, last)


def assert_next_batch_follows_the_new_model(client, project_id: int, candidate: Path, last: dict) -> None:
    """The switch refreshed the `Next to annotate` tab: five tasks no one annotated, among the 50
    (ten times five) that the new model is least certain about; the old model's tab is gone."""
    title = f"Next to annotate ({last['model_version']})"
    assert last["next_to_annotate"] == {"tab": title, "tasks": 5, "open_tasks": 159}, last
    views = {view.data["title"]: view.id for view in client.views.list(project=project_id)}
    assert "Next to annotate (four-annotations)" not in views
    open_tasks = {task.id: task.data["text"] for task in client.tasks.list(project=project_id) if not task.is_labeled}
    tagger = Tagger(candidate, mode="fp32")
    certain = dict(zip(open_tasks, certainty(tagger.scores(list(open_tasks.values())), tagger.thresholds)))
    fiftieth = sorted(certain.values())[49]
    batch = [task.id for task in client.tasks.list(project=project_id, view=views[title])]
    assert len(batch) == 5 and all(certain[task_id] <= fiftieth + 1e-4 for task_id in batch), (batch, certain)
