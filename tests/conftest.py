import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEED_EXPORT = REPO / "data" / "seed_export.json"
NEWS_EXPORT = REPO / "data" / "news_batch1_export.json"  # the bundled news corpus, batch 1
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
