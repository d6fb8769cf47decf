import json
import os
from pathlib import Path

import pytest

import labelstudio_server
from ml_backend import start_backend
from tagger.labels import DEFAULT

REPO = Path(__file__).resolve().parent.parent
SEED_EXPORT = REPO / "data" / "seed_export.json"
NEWS_EXPORT = REPO / "data" / "news_batch1_export.json"  # the bundled news corpus, batch 1
LABELS = DEFAULT.labels  # the bundled labels, in data/label_config.xml's order
BUNDLED_EXPORTS = [SEED_EXPORT, NEWS_EXPORT, REPO / "data" / "news_batch2_export.json"]


# A user's own project: five labels (the bundled four and one the bundled corpus lacks), other
# control names than the bundled config's, and the sentence in data.sentence.
FIVE_LABELS = ("withdrawal", "strike", "evacuation", "atrocity_claim", "ceasefire")
FIVE_LABEL_CONFIG = ('<View><Header value="$title"/><Text name="sentence" value="$sentence"/>'
                     '<Choices name="events" toName="sentence" choice="multiple">'
                     + "".join(f'<Choice value="{label}"/>' for label in FIVE_LABELS) + "</Choices></View>")


def choice(*labels, from_name="event", to_name="text"):
    return [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": list(labels)}}]


def five_label_tasks() -> list[dict]:
    """The seed export as that project's tasks: data.sentence, Choices `events`, and `ceasefire` on
    every sentence that mentions talks, a truce or a ceasefire, or else on every ninth sentence."""
    tasks = []
    for i, seed in enumerate(json.loads(SEED_EXPORT.read_text())):
        data = {("sentence" if key == "text" else key): value for key, value in seed["data"].items()}
        labels = [c for a in seed["annotations"] for r in a["result"] for c in r["value"]["choices"]]
        if i % 9 == 0 or any(word in data["sentence"].lower() for word in ("talks", "truce", "ceasefire")):
            labels.append("ceasefire")
        tasks.append({"id": seed["id"], "data": data, "annotations": [
            {"id": seed["id"], "result": choice(*labels, from_name="events", to_name="sentence") if labels else [],
             "was_cancelled": False, "ground_truth": False}]})
    return tasks


@pytest.fixture
def five_label_project(tmp_path):
    """(export, labeling config) files of the five-label project, as `labelstudio export` saves them."""
    export = tmp_path / "my_export.json"
    export.write_text(json.dumps(five_label_tasks()))
    config = tmp_path / "my_export.label_config.xml"
    config.write_text(FIVE_LABEL_CONFIG)
    return export, config


def annotation(*labels, cancelled=False, ground_truth=False, updated="2026-01-01T00:00:00Z", id=None):
    return {"id": id, "result": choice(*labels) if labels else [], "was_cancelled": cancelled,
            "ground_truth": ground_truth, "updated_at": updated}


def task(id, text, *annotations, article=None):
    data = {"text": text, **({"article_id": article} if article else {})}
    return {"id": id, "data": data, "annotations": list(annotations)}


@pytest.fixture
def write_export(tmp_path):
    """Write tasks (or raw text/bytes) to a file and return its path."""
    def write(content, name="export.json"):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
        return path
    return write


@pytest.fixture(scope="session")
def smoke_model(tmp_path_factory):
    """A tiny model trained once per session with configs/smoke.yaml."""
    from train.config import load_config
    from train.run import run
    output = tmp_path_factory.mktemp("smoke") / "smoke"
    return run(load_config(["--config", str(REPO / "configs/smoke.yaml"), "--output_dir", str(output)]))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real Label Studio server, started once for every test that talks to one."""
    try:
        server = labelstudio_server.start(tmp_path_factory.mktemp("label-studio"))
    except labelstudio_server.Unavailable as error:
        if os.environ.get("REQUIRE_LABEL_STUDIO"):
            pytest.fail(f"Label Studio is required here: {error}")
        pytest.skip(f"!!! LABEL STUDIO TESTS SKIPPED: {error} !!!")
    yield server
    labelstudio_server.stop(server)


@pytest.fixture(scope="session")
def keys(server):
    """Personal access tokens of the admin and of a second annotator."""
    from label_studio_sdk import LabelStudio
    admin = server.token_for(*labelstudio_server.ADMIN)
    invite = LabelStudio(base_url=server.url, api_key=admin).organizations.invites.get_invite_link()
    return admin, server.token_for(*labelstudio_server.SECOND, invite_url=invite.invite_url)


@pytest.fixture(scope="session")
def five_label_model(tmp_path_factory):
    """A tiny model of the five-label project, trained once per session with configs/smoke.yaml."""
    from train.config import load_config
    from train.run import run
    folder = tmp_path_factory.mktemp("five")
    (folder / "my_export.json").write_text(json.dumps(five_label_tasks()))
    (folder / "my_export.label_config.xml").write_text(FIVE_LABEL_CONFIG)
    return run(load_config(["--config", str(REPO / "configs/smoke.yaml"), "--data_files", str(folder / "my_export.json"),
                            "--label_config", str(folder / "my_export.label_config.xml"),
                            "--output_dir", str(folder / "model")]))


@pytest.fixture
def run_backend(tmp_path):
    started = []

    def run(model, *args, env=None):
        started.append(start_backend(model, tmp_path / f"backend-{len(started)}.log", *args, env=env))
        return started[-1]
    yield run
    for backend in started:
        backend.process.terminate()
        backend.process.wait(30)


@pytest.fixture(scope="module")
def client(server, keys):
    from label_studio_sdk import LabelStudio
    return LabelStudio(base_url=server.url, api_key=keys[0])


@pytest.fixture
def label_studio_env(server, keys):
    return {"LABEL_STUDIO_URL": server.url, "LABEL_STUDIO_API_KEY": keys[0]}
