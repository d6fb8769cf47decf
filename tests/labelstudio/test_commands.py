"""The Label Studio commands against a real server (installed and started by the tests)."""

import json
import os
import subprocess
import sys

import httpx
import pytest
from label_studio_sdk import LabelStudio

import labelstudio_server
from conftest import LABELS, REPO
from tagger.annotations import read_export
from tagger.cli import UserError
from labelstudio import client as ls_client
from labelstudio import predictions as ls_predictions
from labelstudio import projects as ls_projects
from tagger.labels import DEFAULT, from_label_config

pytestmark = pytest.mark.labelstudio

def test_the_bundled_labeling_config_is_the_bundled_default():
    text = (REPO / "data" / "label_config.xml").read_text()
    assert from_label_config(text, "data/label_config.xml") == DEFAULT
    assert DEFAULT.labels == LABELS and not DEFAULT.single_choice


def cli(server, key, *args):
    return subprocess.run([sys.executable, "-m", "labelstudio", *args, "--url", server.url],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "LABEL_STUDIO_API_KEY": key})


def choices(*labels):
    return [{"from_name": "event", "to_name": "text", "type": "choices", "value": {"choices": list(labels)}}] if labels else []


@pytest.fixture(scope="module")
def project(server, keys, tmp_path_factory):
    """Twelve seed sentences imported with the import command, annotated by two people."""
    tasks_file = tmp_path_factory.mktemp("tasks") / "tasks.json"
    tasks_file.write_text(json.dumps(json.loads((REPO / "data/seed_tasks.json").read_text())[:12]))
    result = cli(server, keys[0], "import", "--title", "test project", "--tasks", str(tasks_file))
    assert result.returncode == 0, result.stderr
    project_id = int(result.stdout.strip())
    first, second = (LabelStudio(base_url=server.url, api_key=key) for key in keys)
    gold = json.loads((REPO / "data/seed_labels.json").read_text())
    tasks = list(first.tasks.list(project=project_id))
    for task in tasks[:10]:  # the last two stay unannotated
        first.annotations.create(id=task.id, result=choices(*gold[task.data["sentence_id"]]))
    for task in tasks[:4]:  # the second annotator agrees on four...
        second.annotations.create(id=task.id, result=choices(*gold[task.data["sentence_id"]]))
    second.annotations.create(id=tasks[4].id, result=choices("strike", *gold[tasks[4].data["sentence_id"]]))
    second.annotations.create(id=tasks[5].id, result=[], was_cancelled=True)  # ...skips one
    return project_id, tasks, gold


def test_export_command_writes_the_resolved_annotations_and_agreement(server, keys, project, tmp_path):
    project_id, tasks, gold = project
    result = cli(server, keys[0], "export", "--project", str(project_id), "--output", str(tmp_path / "e.json"))
    assert result.returncode == 0, result.stderr
    sentences, summary = read_export(tmp_path / "e.json", DEFAULT)
    saved = (tmp_path / "e.label_config.xml").read_text()  # the project's config, as the server keeps it
    assert saved.strip() == (REPO / "data/label_config.xml").read_text().strip()
    assert summary.tasks == summary.sentences == 10  # unannotated tasks are left out of the export
    assert summary.cancelled_annotations == 0  # and so are cancelled annotations
    assert summary.multi_annotated == 5
    by_text = {s.text: s.labels for s in sentences}
    for task in tasks[:10]:  # the disagreement is a 1-1 tie on strike: off by default
        assert list(by_text[task.data["text"]]) == gold[task.data["sentence_id"]]
    kappa = summary.agreement()["cohen_kappa"]
    assert kappa["strike"] == 0.0 and summary.agreement()["tasks"] == 5  # strike: the one disagreement
    assert "Cohen's kappa over 5 doubly-annotated tasks" in result.stderr


def test_predictions_go_back_with_scores_and_a_least_certain_first_tab(server, keys, project, smoke_model):
    project_id, tasks, _ = project
    result = cli(server, keys[0], "predict", "--project", str(project_id), "--model", str(smoke_model),
                 "--model-version", "run-1")
    assert result.returncode == 0, result.stderr
    client = LabelStudio(base_url=server.url, api_key=keys[0])
    predictions = [p for task in tasks for p in client.predictions.list(task=task.id)]
    assert len(predictions) == 12 and {p.model_version for p in predictions} == {"run-1"}
    assert all(0 <= p.score <= 1 for p in predictions)
    assert all(c in LABELS for p in predictions for r in p.result for c in r["value"]["choices"])
    view = [v for v in client.views.list(project=project_id) if v.data["title"] == "Least certain first (run-1)"][0]
    ordered = [t.predictions_score for t in client.tasks.list(project=project_id, view=view.id, fields="all")]
    assert ordered == sorted(ordered) and len(ordered) == 12
    next_view = [v for v in client.views.list(project=project_id) if v.data["title"] == "Next to annotate (run-1)"][0]
    batch = list(client.tasks.list(project=project_id, view=next_view.id, fields="all"))
    assert sorted(t.id for t in batch) == sorted(t.id for t in tasks[10:])  # the two no one annotated
    assert [t.predictions_score for t in batch] == sorted(t.predictions_score for t in batch)


def test_pushing_a_version_again_replaces_its_predictions_and_keeps_other_versions(server, keys, project, smoke_model):
    project_id, tasks, _ = project
    for version, batch in (("run-1", "100"), ("run-2", "100"), ("run-2", "1")):
        result = cli(server, keys[0], "predict", "--project", str(project_id), "--model", str(smoke_model),
                     "--model-version", version, "--next-batch", batch)
        assert result.returncode == 0, result.stderr
    assert "replacing 12 earlier ones" in result.stderr
    client = LabelStudio(base_url=server.url, api_key=keys[0])
    for task in tasks:
        assert sorted(p.model_version for p in client.predictions.list(task=task.id)) == ["run-1", "run-2"]
    titles = [v.data["title"] for v in client.views.list(project=project_id)]
    assert titles.count("Least certain first (run-2)") == 1 and titles.count("Least certain first (run-1)") == 1
    assert titles.count("Next to annotate (run-2)") == 1 and titles.count("Next to annotate (run-1)") == 1
    next_view = [v for v in client.views.list(project=project_id) if v.data["title"] == "Next to annotate (run-2)"][0]
    batch = [t.id for t in client.tasks.list(project=project_id, view=next_view.id)]
    assert len(batch) == 1 and batch[0] in {t.id for t in tasks[10:]}  # the second push's batch of one


@pytest.mark.parametrize("command", [["predict", "--url", "http://127.0.0.1:9", "--project", "1"], ["serve"]])
def test_a_negative_next_batch_is_one_line_before_any_request(tmp_path, command):
    result = subprocess.run([sys.executable, "-m", "labelstudio", *command, "--model", str(tmp_path),
                             "--next-batch", "-1"],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "LABEL_STUDIO_API_KEY": "x"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: --next_batch -1: give 0 (no tab) or more tasks"


def test_the_key_is_never_printed_or_written(server, keys, project, tmp_path):
    project_id = project[0]
    runs = [cli(server, keys[0], "export", "--project", str(project_id), "--output", str(tmp_path / "ok.json")),
            cli(server, keys[0], "export", "--project", "999", "--output", str(tmp_path / "no.json")),
            cli(server, keys[0] + "x", "export", "--project", str(project_id), "--output", str(tmp_path / "x.json"))]
    trained = subprocess.run([sys.executable, "-m", "train", "--config", "configs/smoke.yaml", "--data_files",
                              str(tmp_path / "ok.json"), str(REPO / "data/seed_export.json"),
                              "--output_dir", str(tmp_path / "model")], cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, "LABEL_STUDIO_API_KEY": keys[0]})
    assert trained.returncode == 0, trained.stderr[-2000:]
    for run in [*runs, trained]:
        assert keys[0] not in run.stdout + run.stderr
    for path in tmp_path.rglob("*"):  # the export, the model folder and everything in it
        if path.is_file():
            assert keys[0].encode() not in path.read_bytes(), path


@pytest.mark.parametrize("case, message", [
    ("wrong url", "cannot"),
    ("wrong key", "the API key was refused"),
    ("missing project", "not found (check the project id)"),
])
def test_bad_connections_give_one_line_and_no_file(server, keys, project, tmp_path, case, message):
    url, key, project_id = server.url, keys[0], project[0]
    if case == "wrong url":
        url = f"http://127.0.0.1:{labelstudio_server.free_port()}"
    elif case == "wrong key":
        key = key[:-4] + "AAAA"
    elif case == "missing project":
        project_id = 99999
    result = subprocess.run([sys.executable, "-m", "labelstudio", "export", "--url", url, "--project",
                             str(project_id), "--output", str(tmp_path / "out.json")], cwd=REPO,
                            capture_output=True, text=True, env={**os.environ, "LABEL_STUDIO_API_KEY": key})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last
    assert list(tmp_path.iterdir()) == []


def test_the_old_command_name_still_works(server, keys, project, tmp_path):
    result = subprocess.run([sys.executable, "-m", "train.labelstudio", "export", "--url", server.url, "--project",
                             str(project[0]), "--output", str(tmp_path / "e.json")], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "LABEL_STUDIO_API_KEY": keys[0]})
    assert result.returncode == 0, result.stderr
    assert read_export(tmp_path / "e.json", DEFAULT)[1].sentences == 10


def test_predictions_for_a_project_with_labels_the_model_lacks_are_refused(server, keys, tmp_path, smoke_model):
    config = ('<View><Text name="text" value="$text"/><Choices name="event" toName="text" choice="multiple">'
              '<Choice value="strike"/><Choice value="ceasefire"/></Choices></View>')
    project_id = LabelStudio(base_url=server.url, api_key=keys[0]).projects.create(title="other", label_config=config).id
    result = cli(server, keys[0], "predict", "--project", str(project_id), "--model", str(smoke_model))
    assert result.returncode == 1
    assert "the model cannot tag ['ceasefire']" in result.stderr.strip().splitlines()[-1]


def test_an_export_interrupted_midway_leaves_nothing(server, keys, project, tmp_path, monkeypatch):
    client = ls_client.connect(server.url, keys[0])
    real_download = client.projects.exports.download

    def cut_off(*args, **kwargs):  # the real stream, broken after its first chunk
        chunks = real_download(*args, **kwargs)
        yield next(iter(chunks))
        raise httpx.RemoteProtocolError("peer closed connection")
    monkeypatch.setattr(client.projects.exports, "download", cut_off)
    with pytest.raises(UserError, match="the transfer was interrupted"):
        ls_projects.export(client, server.url, project[0], tmp_path / "e.json")
    assert list(tmp_path.iterdir()) == []


def dies_on_call(method, number):
    """method, but the server goes away on its number-th call."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise httpx.RemoteProtocolError("server went away")
        return method(*args, **kwargs)
    return wrapped


def test_an_import_broken_off_midway_is_finished_by_running_it_again(server, keys, monkeypatch):
    client = ls_client.connect(server.url, keys[0])
    project_id = ls_projects.create_project(client, server.url, "broken import")
    tasks = json.loads((REPO / "data/seed_tasks.json").read_text())[:12]
    monkeypatch.setattr(ls_projects, "PAGE", 5)
    real = client.projects.import_tasks
    monkeypatch.setattr(client.projects, "import_tasks", dies_on_call(real, 2))
    with pytest.raises(UserError, match=f"5 of 12 new tasks .* again with --project {project_id} to finish"):
        ls_projects.import_tasks(client, server.url, project_id, tasks)
    assert len(list(client.tasks.list(project=project_id))) == 5
    monkeypatch.setattr(client.projects, "import_tasks", real)
    ls_projects.import_tasks(client, server.url, project_id, tasks)
    texts = sorted(task.data["text"] for task in client.tasks.list(project=project_id))
    assert texts == sorted(task["data"]["text"] for task in tasks)  # each once


def test_a_prediction_push_broken_off_midway_is_finished_by_running_it_again(server, keys, project, smoke_model,
                                                                            monkeypatch):
    project_id, tasks, _ = project
    client = ls_client.connect(server.url, keys[0])
    monkeypatch.setattr(ls_predictions, "PAGE", 5)
    real = client.projects.import_predictions
    monkeypatch.setattr(client.projects, "import_predictions", dies_on_call(real, 2))
    with pytest.raises(UserError, match="cannot reach Label Studio"):
        ls_predictions.push_predictions(client, server.url, project_id, smoke_model, "broken")
    versions = [p.model_version for task in tasks for p in client.predictions.list(task=task.id)]
    assert versions.count("broken") == 5  # the first page is in
    monkeypatch.setattr(client.projects, "import_predictions", real)
    ls_predictions.push_predictions(client, server.url, project_id, smoke_model, "broken")
    for task in tasks:
        assert [p.model_version for p in client.predictions.list(task=task.id)].count("broken") == 1
