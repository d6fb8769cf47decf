"""Model predictions in Label Studio's format, under the project's own control names and labels,
and pushed back to a project as pre-annotations."""

import logging
from pathlib import Path

import numpy as np
from label_studio_sdk import LabelStudio
from tqdm.auto import tqdm

from labelstudio.client import PAGE, call, iterate
from labelstudio.projects import served_schema
from tagger.cli import UserError
from tagger.labels import LabelSchema

log = logging.getLogger(__name__)

NEXT_BATCH = 100  # tasks in the `Next to annotate` tab: one round of eval.active_learning's simulation


def certainty(scores: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """Per task, how far its least clear label is from its threshold, scaled to 0..1:
    0 means some label sits on its threshold. Sorting by it puts the least certain first."""
    cut = np.array(list(thresholds.values()))
    margin = np.where(scores >= cut, (scores - cut) / (1 - cut), (cut - scores) / cut)
    return margin.min(axis=1)


def prediction_result(labels: list[str], score: float, version: str, schema: LabelSchema) -> dict:
    """One prediction in Label Studio's format: the project's Choices (none: an empty result), the
    task's certainty as its score, and the model version."""
    result = [{"from_name": schema.from_name, "to_name": schema.to_name, "type": "choices",
               "value": {"choices": labels}}] if labels else []
    return {"result": result, "score": round(float(score), 4), "model_version": version}


def predictions(tagger, scores: np.ndarray, schema: LabelSchema, version: str) -> list[dict]:
    """One prediction per row of the tagger's scores, for a project whose control is `schema`
    (served_schema): its labels only, one at most where it is single-choice."""
    from tagger.predictor import chosen_labels  # torch only where a model scores

    columns = [tagger.schema.label2id[label] for label in schema.labels]
    scores = scores[:, columns]
    thresholds = {label: tagger.thresholds[label] for label in schema.labels}
    return [prediction_result(labels, score, version, schema) for labels, score
            in zip(chosen_labels(scores, thresholds, schema.single_choice), certainty(scores, thresholds))]


def push_predictions(client: LabelStudio, url: str, project_id: int, model_dir: Path,
                     version: str | None = None, next_batch_size: int = NEXT_BATCH) -> int:
    """Score every task of the project and store the results as predictions (pre-annotations),
    page by page; then add two Data Manager tabs: every task, least certain first, and the next
    `next_batch_size` tasks to annotate (labelstudio.selection: the least certain, spread over
    what they are about). Pushing a model version again replaces its earlier predictions and its
    next batch, so a re-run (after retraining, or after a push that failed midway) leaves one set."""
    from tagger.predictor import Tagger  # torch is loaded only for this command

    tagger, version = Tagger(model_dir, mode="fp32"), version or Path(model_dir).name
    project = call(url, client.projects.get, id=project_id)
    schema = served_schema(project.label_config, tagger.schema, f"{url}, project {project_id}")
    earlier = [p.id for p in call(url, client.predictions.list, project=project_id) if p.model_version == version]
    pushed, open_tasks = 0, []  # open: (id, text, certainty) of the tasks no one has annotated
    tasks = call(url, client.tasks.list, project=project_id, page_size=PAGE, fields="all")
    for page in pages(tqdm(iterate(url, tasks), unit=" task", desc="predict"), PAGE):
        rows = push_page(client, url, project_id, tagger, schema, page, version)
        pushed += len(rows)
        open_tasks += [(task.id, task.data[schema.text_field], row["score"])
                       for task, row in zip(page, rows) if not task.is_labeled]
    for prediction_id in earlier:  # only now that the new set is in: a failed push loses nothing
        call(url, client.predictions.delete, id=prediction_id)
    # The project's model version picks the predictions shown to annotators and scored in the
    # Data Manager's prediction-score column, which the tabs below sort on.
    call(url, client.projects.update, id=project_id, model_version=version)
    add_least_certain_tab(client, url, project_id, version)
    if next_batch_size and open_tasks:
        add_next_batch_tab(client, url, project_id, version, open_tasks, next_batch_size)
    log.info("Pushed %d predictions (model version %r, Choices %r on %r) to project %d, replacing %d earlier "
             "ones of that version", pushed, version, schema.from_name, schema.to_name, project_id, len(earlier))
    return pushed


def pages(items, size: int):
    page = []
    for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def add_least_certain_tab(client: LabelStudio, url: str, project_id: int, version: str) -> None:
    title = f"Least certain first ({version})"
    if any((view.data or {}).get("title") == title for view in call(url, client.views.list, project=project_id)):
        return
    view = {"title": title, "ordering": ["tasks:predictions_score"]}
    call(url, client.views.create, project=project_id, data=view)


def add_next_batch_tab(client: LabelStudio, url: str, project_id: int, version: str, open_tasks, size: int,
                       replaces: str | None = None) -> str:
    """A tab with the tasks to annotate next (`open_tasks`: id, text and certainty of those no one
    has annotated; labelstudio.selection picks), least certain first; returns its title. A tab of
    that version from an earlier push, and of the version `replaces`, goes: the batch follows the model."""
    from labelstudio.selection import next_batch  # scikit-learn and the sentence encoder only here

    ids, texts, certainty = zip(*open_tasks)
    chosen = [ids[i] for i in next_batch(np.array(certainty), list(texts), size, np.random.default_rng(0))]
    title = next_batch_title(version)
    view = {"title": title, "ordering": ["tasks:predictions_score"], "filters": {"conjunction": "or", "items": [
        {"filter": "filter:tasks:id", "operator": "equal", "type": "Number", "value": task_id} for task_id in chosen]}}
    gone = {title, next_batch_title(replaces)} if replaces else {title}
    earlier = [v.id for v in call(url, client.views.list, project=project_id) if (v.data or {}).get("title") in gone]
    call(url, client.views.create, project=project_id, data=view)
    for view_id in earlier:
        call(url, client.views.delete, id=view_id)
    log.info("Tab %r: the %d tasks to annotate next, of %d that no one has annotated", title, len(chosen),
             len(open_tasks))
    return title


def next_batch_title(version: str) -> str:
    return f"Next to annotate ({version})"


def push_page(client, url, project_id, tagger, schema: LabelSchema, tasks, version) -> list[dict]:
    """The page's predictions, once pushed."""
    missing = [task.id for task in tasks if not isinstance((task.data or {}).get(schema.text_field), str)]
    if missing:
        raise UserError(f"{url}, project {project_id}: tasks {missing[:10]} have no text at data.{schema.text_field} "
                        f"(the field Text {schema.to_name!r} shows)")
    scores = tagger.scores([task.data[schema.text_field] for task in tasks])
    rows = predictions(tagger, scores, schema, version)
    call(url, client.projects.import_predictions, id=project_id,
         request=[{"task": task.id, **row} for task, row in zip(tasks, rows)])
    return rows
