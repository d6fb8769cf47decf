"""The ML backend (`python -m labelstudio serve`) as a real server process, and what Label Studio
does with one: connect it to a project, retrieve its predictions."""

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

import labelstudio_server

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Backend:
    url: str
    process: subprocess.Popen
    log: Path

    def get(self, path, **kwargs):
        return requests.get(self.url + path, timeout=60, **kwargs)

    def post(self, path, body=None, **kwargs):
        return requests.post(self.url + path, json=body, timeout=120, **kwargs)

    def predict(self, texts, **kwargs):
        return self.post("/predict", {"tasks": [{"id": i, "data": {"text": t}} for i, t in enumerate(texts)]}, **kwargs)

    def last_training(self, timeout=600):
        """/metrics' last_training once the run is over."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.get("/metrics").json()["last_training"]
            if last and last["status"] != "running":
                return last
            time.sleep(1)
        raise AssertionError(f"training still running after {timeout} s; see {self.log}")


def start_backend(model: Path, log: Path, *args, env=None) -> Backend:
    port = labelstudio_server.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "labelstudio", "serve", "--model", str(model), "--port", str(port), *args],
        cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    backend = Backend(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(backend.url + "/health", timeout=2)  # any answer (401 with basic auth) means up
            return backend
        except requests.ConnectionError:
            time.sleep(0.5)
    process.kill()
    raise AssertionError(f"the backend did not start: {log.read_text()[-3000:]}")


def connect(client, project_id: int, backend: Backend) -> int:
    """Project Settings > Model > Connect Model, through the API."""
    return client.ml.create(project=project_id, url=backend.url, title="war news tagger").id


def retrieve_predictions(client, project_id: int) -> dict[int, list]:
    """The Data Manager's "Retrieve Predictions" on every task; then each task's predictions."""
    client.actions.create(id="retrieve_tasks_predictions", project=project_id,
                          selected_items={"all": True, "excluded": []})
    return {task.id: list(client.predictions.list(task=task.id)) for task in client.tasks.list(project=project_id)}


def annotated_seed_project(client, title: str, annotated: bool = True) -> int:
    """The 165 seed sentences as tasks, each annotated with its gold labels (data/seed_labels.json)."""
    gold = json.loads((REPO / "data/seed_labels.json").read_text())
    tasks = json.loads((REPO / "data/seed_tasks.json").read_text())
    if annotated:
        tasks = [{**task, "annotations": [{"result": [
            {"from_name": "event", "to_name": "text", "type": "choices",
             "value": {"choices": gold[task["data"]["sentence_id"]]}}] if gold[task["data"]["sentence_id"]] else []}]}
            for task in tasks]
    project_id = client.projects.create(title=title, label_config=(REPO / "data" / "label_config.xml").read_text()).id
    client.projects.import_tasks(id=project_id, request=tasks)
    return project_id
