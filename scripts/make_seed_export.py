"""Rebuild data/seed_export.json through a real Label Studio server.

The seed sentences (data/seed_tasks.json, made by `python -m train.prepare --input seeds/`)
are imported into a new project, annotated through the API with the labels recorded in
data/seed_labels.json (one annotator, following data/annotation_guidelines.md), and exported.

LABEL_STUDIO_API_KEY=... python scripts/make_seed_export.py --url http://127.0.0.1:8080
"""

import argparse
import json
import os
from pathlib import Path

from tagger.cli import run_command
from labelstudio.client import connect
from labelstudio.projects import create_project, export, import_tasks
from tagger.labels import DEFAULT

DATA = Path(__file__).resolve().parent.parent / "data"


def choices_result(labels: list[str]) -> list[dict]:
    if not labels:
        return []  # an empty result is Label Studio's "submitted with no choice": no event
    return [{"from_name": DEFAULT.from_name, "to_name": DEFAULT.to_name, "type": "choices",
             "value": {"choices": labels}}]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    args = parser.parse_args(argv)
    client = connect(args.url, os.environ.get("LABEL_STUDIO_API_KEY"))
    tasks = json.loads((DATA / "seed_tasks.json").read_text())
    labels = json.loads((DATA / "seed_labels.json").read_text())
    project_id = create_project(client, args.url, "War-news events: seed articles")
    import_tasks(client, args.url, project_id, tasks)
    for task in client.tasks.list(project=project_id):
        client.annotations.create(id=task.id, result=choices_result(labels[task.data["sentence_id"]]))
    export(client, args.url, project_id, DATA / "seed_export.json")


if __name__ == "__main__":
    run_command(main)
