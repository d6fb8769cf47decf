import json
import os
from pathlib import Path

import pytest

import labelstudio_server
from tagger.labels import DEFAULT

REPO = Path(__file__).resolve().parent.parent
SEED_EXPORT = REPO / "data" / "seed_export.json"
NEWS_EXPORT = REPO / "data" / "news_batch1_export.json"  # the bundled news corpus, batch 1
LABELS = DEFAULT.labels  # the bundled labels, in data/label_config.xml's order
BUNDLED_EXPORTS = [SEED_EXPORT, NEWS_EXPORT, REPO / "data" / "news_batch2_export.json"]


def choice(*labels):
    return [{"from_name": "event", "to_name": "text", "type": "choices", "value": {"choices": list(labels)}}]


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
