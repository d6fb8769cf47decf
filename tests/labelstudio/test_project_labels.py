"""A project with its own labels and control names, end to end against a real Label Studio server:
import, annotate, export with its labeling config, train, push predictions back, and the ML backend
(predictions, and Start Training with the project's labeling config)."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from label_studio_sdk import LabelStudio

from conftest import FIVE_LABEL_CONFIG, FIVE_LABELS, REPO, choice, five_label_tasks
from tagger.labels import of_model
from ml_backend import connect, retrieve_predictions

pytestmark = pytest.mark.labelstudio


def cli(server, key, *args):
    result = subprocess.run([sys.executable, "-m", *map(str, args), "--url", server.url], cwd=REPO,
                            capture_output=True, text=True, env={**os.environ, "LABEL_STUDIO_API_KEY": key})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def annotate(client, project_id: int, tasks: list[dict]) -> None:
    """Each task's labels, through the SDK, as an annotator submits them."""
    labels = {task["data"]["sentence"]: task["annotations"][0]["result"] for task in tasks}
    for task in client.tasks.list(project=project_id):
        client.annotations.create(id=task.id, result=labels[task.data["sentence"]])


@pytest.fixture(scope="module")
def five_label_export(server, keys, tmp_path_factory):
    """(project id, export, its saved labeling config): the project made with `labelstudio import`,
    annotated through the SDK, exported with `labelstudio export`."""
    folder = tmp_path_factory.mktemp("own-labels")
    (folder / "config.xml").write_text(FIVE_LABEL_CONFIG)
    tasks = five_label_tasks()
    (folder / "tasks.json").write_text(json.dumps([{"data": task["data"]} for task in tasks]))
    made = cli(server, keys[0], "labelstudio", "import", "--title", "my events", "--label_config", folder / "config.xml",
               "--tasks", folder / "tasks.json")
    project_id = int(made.stdout.strip())
    annotate(LabelStudio(base_url=server.url, api_key=keys[0]), project_id, tasks)
    cli(server, keys[0], "labelstudio", "export", "--project", project_id, "--output", folder / "my_export.json")
    return project_id, folder / "my_export.json", folder / "my_export.label_config.xml"


@pytest.fixture(scope="module")
def trained_from_export(five_label_export, tmp_path_factory):
    _, export, label_config = five_label_export
    model = tmp_path_factory.mktemp("own-model") / "mine"
    result = subprocess.run([sys.executable, "-m", "train", "--config", "configs/smoke.yaml", "--data_files", str(export),
                             "--label_config", str(label_config), "--output_dir", str(model)], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return model


def eager_copy(model, folder):
    """The model with every threshold at 0: it tags every label, so every one shows in a prediction."""
    eager = folder / "eager"
    shutil.copytree(model, eager)
    (eager / "thresholds.json").write_text(json.dumps(dict.fromkeys(FIVE_LABELS, 0.0)))
    return eager


def test_export_saves_the_projects_labeling_config_and_training_takes_its_names(five_label_export,
                                                                                trained_from_export):
    _, export, label_config = five_label_export
    assert label_config.read_text() == FIVE_LABEL_CONFIG
    schema = of_model(trained_from_export)
    assert schema.labels == FIVE_LABELS and (schema.from_name, schema.to_name) == ("events", "sentence")


def test_predictions_go_back_under_the_projects_control_names(server, keys, five_label_export, trained_from_export,
                                                              tmp_path):
    project_id = five_label_export[0]
    cli(server, keys[0], "labelstudio", "predict", "--project", project_id, "--model",
        eager_copy(trained_from_export, tmp_path), "--model_version", "eager")
    client = LabelStudio(base_url=server.url, api_key=keys[0])
    stored = [p for p in client.predictions.list(project=project_id) if p.model_version == "eager"]
    assert len(stored) == len(five_label_tasks())
    for prediction in stored:
        (result,) = prediction.result
        assert (result["from_name"], result["to_name"]) == ("events", "sentence")
        assert result["value"]["choices"] == list(FIVE_LABELS)  # every label of the project can be predicted


def test_the_ml_backend_serves_the_project_under_its_names(client, five_label_export, trained_from_export,
                                                           run_backend):
    project_id = five_label_export[0]
    backend = run_backend(trained_from_export)
    setup = backend.post("/setup", {"project": f"{project_id}.1", "schema": FIVE_LABEL_CONFIG})
    assert setup.status_code == 200
    connect(client, project_id, backend)
    stored = retrieve_predictions(client, project_id)
    fresh = [p for predictions in stored.values() for p in predictions if p.model_version == "mine"]
    assert len(fresh) == len(stored)
    assert all(r["from_name"] == "events" and r["to_name"] == "sentence" and set(r["value"]["choices"]) <= set(FIVE_LABELS)
               for p in fresh for r in p.result)


def test_start_training_trains_with_the_projects_labeling_config(client, five_label_export, trained_from_export,
                                                                 run_backend, label_studio_env, tmp_path):
    serving = tmp_path / "serving"
    shutil.copytree(trained_from_export, serving)
    backend = run_backend(serving, "--config", "configs/smoke.yaml", env=label_studio_env)
    backend.post("/webhook", {"action": "START_TRAINING", "project": {"id": five_label_export[0]}})
    last = backend.last_training()
    assert last["status"] in ("switched", "kept"), last
    candidate = of_model(tmp_path / last["model_version"])
    assert candidate.labels == FIVE_LABELS and candidate.from_name == "events"


def test_start_training_on_a_project_too_small_says_so_in_one_line(client, trained_from_export, run_backend,
                                                                     label_studio_env):
    project_id = client.projects.create(title="six tasks", label_config=FIVE_LABEL_CONFIG).id
    texts = [("Troops withdrew.", "withdrawal"), ("A missile hit.", "strike"), ("Buses left.", "evacuation"),
             ("Torture was reported.", "atrocity_claim"), ("A ceasefire held.", "ceasefire"),
             ("A truce, then strikes.", "strike")]
    client.projects.import_tasks(id=project_id, request=[
        {"data": {"sentence": text}, "annotations": [{"result": choice(label, from_name="events", to_name="sentence")}]}
        for text, label in texts])
    backend = run_backend(trained_from_export, "--config", "configs/smoke.yaml", env=label_studio_env)
    backend.post("/webhook", {"action": "START_TRAINING", "project": {"id": project_id}})
    last = backend.last_training()
    assert last["status"] == "failed" and "Traceback" not in last["reason"] and "\n" not in last["reason"]
    assert "too few annotated sentences to train: 6 sentences from 6 articles" in last["reason"], last
    assert "n_splits" not in last["reason"]
