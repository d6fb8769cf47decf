"""Talking to a Label Studio server (label-studio-sdk 2.x): projects, task import, export,
and model predictions pushed back for annotators.

python -m train.labelstudio import  --url URL (--title NAME | --project ID) --tasks data/seed_tasks.json
python -m train.labelstudio export  --url URL --project ID --output FILE
python -m train.labelstudio predict --url URL --project ID --model models/NAME
python -m train.labelstudio serve   --model models/NAME [--config configs/X.yaml] [--port 9090]

The address is read from LABEL_STUDIO_URL or --url, the API key (a personal access token) from
LABEL_STUDIO_API_KEY or --api_key. The key is never printed, logged or written: errors name the
server and the problem, not the request. `serve` is the ML backend (train/backend.py).
"""

import json
import logging
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import numpy as np
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from tqdm.auto import tqdm

from tagger.annotations import read_export
from tagger.artifacts import atomic_file
from tagger.cli import ArgumentParser, UserError, add_model_option, add_tagger_options, run_command
from tagger.labels import CHOICES_CONTROL, LABELS, TEXT_FIELD

log = logging.getLogger(__name__)

LABEL_CONFIG = Path(__file__).resolve().parent.parent / "data" / "label_config.xml"
PAGE = 500  # tasks per request when reading or writing many


def config_labels(label_config: str) -> tuple[str, set[str]]:
    """(text object name, label values) of the Choices control named CHOICES_CONTROL."""
    root = ET.fromstring(label_config)
    for choices in root.iter("Choices"):
        if choices.get("name") == CHOICES_CONTROL:
            return choices.get("toName"), {c.get("value") for c in choices.iter("Choice")}
    return "", set()


def check_label_config(label_config: str, where: str) -> None:
    text_name, labels = config_labels(label_config)
    if labels != set(LABELS) or text_name != TEXT_FIELD:
        found = f"{sorted(labels)} on {text_name!r}" if labels else "no such control"
        raise UserError(
            f"{where}: labeling config does not match this repository: expected a Choices control "
            f"{CHOICES_CONTROL!r} on {TEXT_FIELD!r} with {sorted(LABELS)}, found {found} "
            "(create the project from data/label_config.xml)")


def connect(url: str, api_key: str | None) -> LabelStudio:
    if not api_key:
        raise UserError("no Label Studio API key: set LABEL_STUDIO_API_KEY or pass --api_key")
    try:
        client = LabelStudio(base_url=url.rstrip("/"), api_key=api_key, timeout=60)
    except Exception as error:  # the SDK exchanges the token at once; hide its message
        raise UserError(f"{url}: cannot sign in to Label Studio ({type(error).__name__}); "
                        "check the URL and that the key is a valid personal access token") from None
    call(url, client.users.whoami)
    return client


def call(url: str, method, *args, **kwargs):
    """One SDK request; network and HTTP failures become one-line errors without the key."""
    try:
        return method(*args, **kwargs)
    except ApiError as error:
        if error.status_code in (401, 403):
            raise UserError(f"{url}: the API key was refused (wrong, expired or revoked)") from None
        if error.status_code == 404:
            raise UserError(f"{url}: not found (check the project id)") from None
        raise UserError(f"{url}: Label Studio answered HTTP {error.status_code}") from None
    except (httpx.HTTPError, OSError) as error:
        raise UserError(f"{url}: cannot reach Label Studio ({type(error).__name__})") from None


def create_project(client: LabelStudio, url: str, title: str) -> int:
    project = call(url, client.projects.create, title=title, label_config=LABEL_CONFIG.read_text())
    log.info("Created project %d %r", project.id, title)
    return project.id


def checked_project(client: LabelStudio, url: str, project_id: int):
    project = call(url, client.projects.get, id=project_id)
    check_label_config(project.label_config, f"{url}, project {project_id}")
    return project


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


def export(client: LabelStudio, url: str, project_id: int, output: Path, poll_seconds: float = 1.0):
    """Full JSON export of annotated tasks without cancelled annotations, made as a server-side
    snapshot and streamed to a temporary file; checked, then moved into place, so an
    interrupted export leaves no partial file. Returns the export's summary."""
    checked_project(client, url, project_id)
    snapshot = call(url, client.projects.exports.create, id=project_id, title="train.labelstudio export",
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
        _, summary = read_export(Path(handle.name))
    log.info("Exported project %d to %s: %s", project_id, output, summary)
    return summary


def iterate(url: str, chunks):
    """Chunks of a streamed download or pages of a listing; a connection lost midway is a clear error."""
    try:
        yield from chunks
    except (httpx.HTTPError, OSError) as error:
        raise UserError(f"{url}: the transfer was interrupted ({type(error).__name__}); nothing was written") from None


def certainty(scores: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """Per task, how far its least clear label is from its threshold, scaled to 0..1:
    0 means some label sits on its threshold. Sorting by it puts the least certain first."""
    cut = np.array([thresholds[label] for label in LABELS])
    margin = np.where(scores >= cut, (scores - cut) / (1 - cut), (cut - scores) / cut)
    return margin.min(axis=1)


def prediction_result(labels: list[str], score: float, version: str) -> dict:
    """One prediction in Label Studio's format: our Choices (none: an empty result), the task's
    certainty as its score, and the model version."""
    result = [{"from_name": CHOICES_CONTROL, "to_name": TEXT_FIELD, "type": "choices",
               "value": {"choices": labels}}] if labels else []
    return {"result": result, "score": round(float(score), 4), "model_version": version}


def push_predictions(client: LabelStudio, url: str, project_id: int, model_dir: Path,
                     version: str | None = None) -> int:
    """Score every task of the project and store the results as predictions (pre-annotations),
    page by page; then add a Data Manager tab that lists the least certain tasks first.
    Pushing a model version again replaces its earlier predictions, so a re-run (after
    retraining, or after a push that failed midway) leaves one set, not two."""
    from tagger.predictor import Tagger  # torch is loaded only for this command

    checked_project(client, url, project_id)
    predictor, version = Tagger(model_dir), version or Path(model_dir).name
    earlier = [p.id for p in call(url, client.predictions.list, project=project_id) if p.model_version == version]
    pushed, page = 0, []
    tasks = call(url, client.tasks.list, project=project_id, page_size=PAGE, fields="all")
    for task in tqdm(iterate(url, tasks), unit=" task", desc="predict"):
        page.append(task)
        if len(page) == PAGE:
            pushed += push_page(client, url, project_id, predictor, page, version)
            page = []
    pushed += push_page(client, url, project_id, predictor, page, version)
    for prediction_id in earlier:  # only now that the new set is in: a failed push loses nothing
        call(url, client.predictions.delete, id=prediction_id)
    # The project's model version picks the predictions shown to annotators and scored in the
    # Data Manager's prediction-score column, which the tab below sorts on.
    call(url, client.projects.update, id=project_id, model_version=version)
    add_least_certain_tab(client, url, project_id, version)
    log.info("Pushed %d predictions (model version %r) to project %d, replacing %d earlier ones of that version",
             pushed, version, project_id, len(earlier))
    return pushed


def add_least_certain_tab(client: LabelStudio, url: str, project_id: int, version: str) -> None:
    title = f"Least certain first ({version})"
    if any((view.data or {}).get("title") == title for view in call(url, client.views.list, project=project_id)):
        return
    view = {"title": title, "ordering": ["tasks:predictions_score"]}
    call(url, client.views.create, project=project_id, data=view)


def push_page(client, url, project_id, predictor, tasks, version) -> int:
    if not tasks:
        return 0
    scores = predictor.scores([task.data[TEXT_FIELD] for task in tasks])
    rows = [{"task": task.id, **prediction_result(labels, score, version)} for task, labels, score
            in zip(tasks, predictor.labels(scores), certainty(scores, predictor.thresholds))]
    call(url, client.projects.import_predictions, id=project_id, request=rows)
    return len(rows)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if args.command == "serve":
        from train.backend import serve  # Flask and torch only for this command
        return serve(args)
    if not args.url:
        raise UserError("no Label Studio address: pass --url or set LABEL_STUDIO_URL")
    client = connect(args.url, args.api_key)
    if args.command == "export":
        export(client, args.url, args.project, args.output)
    elif args.command == "predict":
        push_predictions(client, args.url, args.project, args.model, args.model_version)
    else:
        tasks = json.loads(args.tasks.read_text(encoding="utf-8"))
        project_id = args.project if args.project is not None else create_project(client, args.url, args.title)
        checked_project(client, args.url, project_id)
        import_tasks(client, args.url, project_id, tasks)
        print(project_id)


def parser() -> ArgumentParser:
    main_parser = ArgumentParser("python -m train.labelstudio", __doc__)
    commands = main_parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    connection = ArgumentParser("", add_help=False)
    connection.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL"),
                            help="Label Studio address, e.g. http://localhost:8080 (default: $LABEL_STUDIO_URL).")
    connection.add_argument("--api_key", default=os.environ.get("LABEL_STUDIO_API_KEY"),
                            help="Personal access token (default: $LABEL_STUDIO_API_KEY).")
    imports = commands.add_parser("import", parents=[connection], help="Import tasks into a project.")
    where = imports.add_mutually_exclusive_group(required=True)
    where.add_argument("--project", type=int, help="Id of an existing project.")
    where.add_argument("--title", help="Create a project with this title.")
    imports.add_argument("--tasks", type=Path, required=True, help="Tasks JSON from `python -m train.prepare`.")
    exports = commands.add_parser("export", parents=[connection], help="Export a project's annotations.")
    exports.add_argument("--project", type=int, required=True, help="Project id.")
    exports.add_argument("--output", type=Path, required=True, help="File to write.")
    predicts = commands.add_parser("predict", parents=[connection], help="Push a model's predictions to a project.")
    predicts.add_argument("--project", type=int, required=True, help="Project id.")
    add_model_option(predicts)
    predicts.add_argument("--model_version", help="Name shown in Label Studio (default: the folder name).")
    add_serve_parser(commands)
    return main_parser


def add_serve_parser(commands) -> None:
    serve = commands.add_parser(
        "serve", help="Serve a model as a Label Studio ML backend.",
        description="Serve a model as a Label Studio ML backend (docs/label-studio.md). Label Studio's address and "
                    "personal access token, used when it asks for training, are read from LABEL_STUDIO_URL and "
                    "LABEL_STUDIO_API_KEY; HTTP basic auth is on when BASIC_AUTH_USER and BASIC_AUTH_PASS are set.")
    add_model_option(serve)
    serve.add_argument("--config", type=Path, default=Path("configs/news.yaml"),
                       help="Training config for runs that Label Studio starts (default: configs/news.yaml).")
    serve.add_argument("--data_files", type=Path, nargs="*", default=[],
                       help="Exports to train on besides the project's annotations, e.g. the bundled ones "
                            "(default: none).")
    serve.add_argument("--train_every", type=int, default=0,
                       help="Also train after this many new or updated annotations (default: 0, only when "
                            "Start Training is pressed).")
    serve.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: 127.0.0.1, this machine "
                                                           "only; 0.0.0.0 for every interface).")
    serve.add_argument("--port", type=int, default=9090, help="Port (default: 9090, as Label Studio's backends).")
    add_tagger_options(serve)


if __name__ == "__main__":
    run_command(main)
