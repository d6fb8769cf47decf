"""Talking to a Label Studio server (label-studio-sdk 2.x): projects, task import, export.

python -m train.labelstudio import --url URL --title NAME --tasks data/seed_tasks.json
python -m train.labelstudio export --url URL --project ID --output FILE

The API key is read from LABEL_STUDIO_API_KEY (or --api-key) and never printed or saved.
"""

import argparse
import json
import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from train.annotations import read_export
from train.artifacts import atomic_file
from train.cli import UserError, run_command
from train.labels import CHOICES_CONTROL, LABELS, TEXT_FIELD

log = logging.getLogger(__name__)

LABEL_CONFIG = Path(__file__).resolve().parent.parent / "data" / "label_config.xml"


def config_labels(label_config: str) -> tuple[str, set[str]]:
    """(text object name, label values) of the Choices control named CHOICES_CONTROL."""
    root = ET.fromstring(label_config)
    for choices in root.iter("Choices"):
        if choices.get("name") == CHOICES_CONTROL:
            return choices.get("toName"), {c.get("value") for c in choices.iter("Choice")}
    raise UserError(f"the labeling config has no Choices control named {CHOICES_CONTROL!r}")


def check_label_config(label_config: str, where: str) -> None:
    text_name, labels = config_labels(label_config)
    if labels != set(LABELS) or text_name != TEXT_FIELD:
        raise UserError(
            f"{where}: labeling config does not match this repository: control {CHOICES_CONTROL!r} "
            f"on {text_name!r} with {sorted(labels)}, expected on {TEXT_FIELD!r} with {sorted(LABELS)}")


def connect(url: str, api_key: str | None) -> LabelStudio:
    if not api_key:
        raise UserError("no Label Studio API key: set LABEL_STUDIO_API_KEY or pass --api-key")
    client = LabelStudio(base_url=url.rstrip("/"), api_key=api_key, timeout=60)
    call(lambda: client.users.whoami(), url)
    return client


def call(request, url: str):
    """Run one SDK request; turn network and HTTP failures into one-line errors without the key."""
    try:
        return request()
    except ApiError as error:
        if error.status_code in (401, 403):
            raise UserError(f"{url}: the API key was refused (wrong, expired or revoked)") from None
        if error.status_code == 404:
            raise UserError(f"{url}: not found (check the project id)") from None
        raise UserError(f"{url}: Label Studio answered HTTP {error.status_code}") from None
    except httpx.HTTPError as error:
        raise UserError(f"{url}: cannot reach Label Studio ({type(error).__name__})") from None


def create_project(client: LabelStudio, url: str, title: str) -> int:
    project = call(lambda: client.projects.create(title=title, label_config=LABEL_CONFIG.read_text()), url)
    log.info("Created project %d %r", project.id, title)
    return project.id


def checked_project(client: LabelStudio, url: str, project_id: int):
    project = call(lambda: client.projects.get(id=project_id), url)
    check_label_config(project.label_config, f"{url}, project {project_id}")
    return project


def import_tasks(client: LabelStudio, url: str, project_id: int, tasks: list[dict]) -> None:
    call(lambda: client.projects.import_tasks(id=project_id, request=tasks), url)
    log.info("Imported %d tasks into project %d", len(tasks), project_id)


def export(client: LabelStudio, url: str, project_id: int, output: Path) -> None:
    """Stream the full JSON export (annotated tasks only) to a temporary file, check that it
    reads, then move it into place: an interrupted export leaves no partial file."""
    checked_project(client, url, project_id)
    with atomic_file(output, "wb") as handle:
        chunks = call(lambda: client.projects.exports.download_sync(
            id=project_id, export_type="JSON", download_all_tasks=False), url)
        call(lambda: [handle.write(chunk) for chunk in chunks], url)
        handle.flush()
        _, summary = read_export(Path(handle.name))
    log.info("Exported project %d to %s: %s", project_id, output, summary)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.labelstudio", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["import", "export"])
    parser.add_argument("--url", required=True, help="Label Studio address, e.g. http://localhost:8080")
    parser.add_argument("--api-key", default=os.environ.get("LABEL_STUDIO_API_KEY"),
                        help="Personal access token (default: $LABEL_STUDIO_API_KEY).")
    parser.add_argument("--project", type=int, help="Project id (export; import into an existing project).")
    parser.add_argument("--title", help="import: create a project with this title.")
    parser.add_argument("--tasks", type=Path, help="import: tasks JSON from `python -m train.prepare`.")
    parser.add_argument("--output", type=Path, help="export: file to write.")
    args = parser.parse_args(argv)
    client = connect(args.url, args.api_key)
    if args.command == "export":
        if args.project is None or args.output is None:
            parser.error("export needs --project and --output")
        export(client, args.url, args.project, args.output)
    else:
        if args.tasks is None or (args.project is None) == (args.title is None):
            parser.error("import needs --tasks and one of --project or --title")
        tasks = json.loads(args.tasks.read_text(encoding="utf-8"))
        project_id = args.project if args.project is not None else create_project(client, args.url, args.title)
        checked_project(client, args.url, project_id)
        import_tasks(client, args.url, project_id, tasks)
        print(project_id)


if __name__ == "__main__":
    run_command(main)
