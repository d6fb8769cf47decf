"""A project's labeling config, task import and export.

A project's labels and control names come from its labeling config: `project_control` picks its
Choices control (the one a model was trained with, when the project has it), `served_schema`
checks that a model can tag every label of it. `export` saves the config beside the export, as
`EXPORT.label_config.xml`, which `python -m train --label_config` reads.
"""

import json
import logging
import time
from pathlib import Path

from label_studio_sdk import LabelStudio
from tqdm.auto import tqdm

from labelstudio.client import PAGE, call, iterate
from tagger.annotations import read_export
from tagger.artifacts import atomic_file, write_text_atomic
from tagger.cli import UserError
from tagger.labels import LabelConfigError, LabelSchema, choices_controls

log = logging.getLogger(__name__)

BUNDLED_CONFIG = Path(__file__).resolve().parent.parent / "data" / "label_config.xml"


def project_control(label_config: str, where: str, preferred: str = "") -> LabelSchema:
    """The project's Choices control on a Text: the one named `preferred` if it has one, else its only one."""
    candidates = choices_controls(label_config, where)
    named = [c for c in candidates if c.from_name == preferred]
    if named or len(candidates) == 1:
        return (named or candidates)[0]
    if not candidates:
        raise LabelConfigError(f"{where}: the labeling config has no Choices control on a Text object")
    raise LabelConfigError(f"{where}: several Choices controls {[c.from_name for c in candidates]}; "
                           "name the one to use with --choices_control")


def served_schema(label_config: str, model: LabelSchema, where: str) -> LabelSchema:
    """The project's control (names, text field, labels) if the model can tag every one of its labels."""
    project = project_control(label_config, where, model.from_name)
    missing = [label for label in project.labels if label not in model.labels]
    if missing:
        raise LabelConfigError(f"{where}: the model cannot tag {missing} of control {project.from_name!r} "
                               f"(it tags {list(model.labels)}); train one with this project's labeling config")
    return project


def checked_project(client: LabelStudio, url: str, project_id: int, control: str = ""):
    """(project, its Choices control's schema)."""
    project = call(url, client.projects.get, id=project_id)
    return project, project_control(project.label_config, f"{url}, project {project_id}", control)


def create_project(client: LabelStudio, url: str, title: str, label_config: Path = BUNDLED_CONFIG) -> int:
    if not Path(label_config).is_file():
        raise UserError(f"{label_config}: labeling config not found (--label_config of import)")
    project_control(Path(label_config).read_text(encoding="utf-8"), str(label_config))  # trainable, before creating
    project = call(url, client.projects.create, title=title, label_config=label_config.read_text(encoding="utf-8"))
    log.info("Created project %d %r", project.id, title)
    return project.id


def import_tasks(client: LabelStudio, url: str, project_id: int, tasks: list[dict]) -> None:
    """Import page by page. Tasks whose data the project already holds are skipped, so an
    import that broke off midway is finished by running it again on the same project."""
    present = {task_key(task.data) for task in iterate(url, call(url, client.tasks.list, project=project_id,
                                                                   page_size=PAGE, fields="all"))}
    missing = [task for task in tasks if task_key(task.get("data", task)) not in present]
    for start in range(0, len(missing), PAGE):
        try:
            call(url, client.projects.import_tasks, id=project_id, request=missing[start:start + PAGE])
        except UserError as error:
            raise UserError(f"{error}; {start} of {len(missing)} new tasks were imported into project {project_id}: "
                            f"run the import again with --project {project_id} to finish it") from None
    log.info("Imported %d tasks into project %d (%d already there)", len(missing), project_id, len(tasks) - len(missing))


def task_key(data: dict) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def config_path(export_file: Path) -> Path:
    """Where `export` saves the project's labeling config: beside the export, named after it."""
    return Path(export_file).with_suffix(".label_config.xml")


def export(client: LabelStudio, url: str, project_id: int, output: Path, control: str = "",
           poll_seconds: float = 1.0):
    """Full JSON export of annotated tasks without cancelled annotations, made as a server-side
    snapshot and streamed to a temporary file; checked with the project's labeling config, then
    moved into place with that config beside it, so an interrupted export leaves no partial
    file. Returns the export's summary."""
    project, schema = checked_project(client, url, project_id, control)
    snapshot = call(url, client.projects.exports.create, id=project_id, title="labelstudio export",
                    task_filter_options={"only_with_annotations": True},
                    annotation_filter_options={"usual": True, "ground_truth": True, "skipped": False})
    while snapshot.status not in ("completed", "failed"):
        time.sleep(poll_seconds)
        snapshot = call(url, client.projects.exports.get, id=project_id, export_pk=snapshot.id)
    if snapshot.status == "failed":
        raise UserError(f"{url}, project {project_id}: the server failed to build the export")
    with atomic_file(output, "wb") as handle, tqdm(unit="B", unit_scale=True, desc="export") as progress:
        chunks = call(url, client.projects.exports.download, id=project_id, export_pk=snapshot.id,
                      export_type="JSON")
        for chunk in iterate(url, chunks):
            handle.write(chunk)
            progress.update(len(chunk))
        handle.flush()
        _, summary = read_export(Path(handle.name), schema)
        write_text_atomic(config_path(output), project.label_config)
    log.info("Exported project %d to %s, its labeling config to %s (Choices %r: %s): %s", project_id, output,
             config_path(output), schema.from_name, list(schema.labels), summary)
    return summary
