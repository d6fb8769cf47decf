"""Training from Label Studio, in the background of the ML backend: export the project's
annotations, train a candidate with `python -m train`, and switch to it only if it scores at
least as well as the serving model on the same validation sentences. The run trains with the
project's labeling config, saved beside the export: a project whose labels changed gets a model
with its new labels.

One run at a time. Every outcome is a `last_training` record (see `Retraining.start`); a run
that fails for any reason leaves the serving model as it was. A run that switches models refreshes
the project's `Next to annotate` tab with the new model, as `python -m labelstudio predict` makes it.
"""

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from labelstudio.client import PAGE, call, connect, iterate
from labelstudio.predictions import NEXT_BATCH, add_next_batch_tab, pages
from labelstudio.projects import config_path, export, project_control
from tagger.cli import UserError
from tagger.metrics import apply_thresholds, report
from train.run import splits_as_trained

log = logging.getLogger(__name__)


class Retraining:
    """Starts and tracks training runs for a `Serving` model (labelstudio/backend.py)."""

    def __init__(self, serving, config: Path, extra_data: list[Path], url: str | None, api_key: str | None,
                 next_batch: int = NEXT_BATCH):
        self.serving, self.config, self.extra_data = serving, config, extra_data
        self.url, self.api_key, self.next_batch = url, api_key, next_batch
        self.last: dict | None = None  # the last run's record, for GET /metrics
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def start(self, project_id: int) -> bool:
        """Start a run for the project unless one is going; False if one is."""
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                log.info("Training asked for project %s while %s is running: not started again",
                         project_id, self.last["model_version"])
                return False
            version = f"{self.serving.name}-project{project_id}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
            self.last = {"status": "running", "reason": f"training for project {project_id}",
                         "model_version": version, "project": project_id, "validation": None}
            self.thread = threading.Thread(target=self.run, args=(project_id, version), daemon=True,
                                           name="training")
            self.thread.start()
        log.info("Training %s for project %s with %s", version, project_id, self.config)
        return True

    def run(self, project_id: int, version: str) -> None:
        replaced = self.serving.version
        try:
            record = self.train_and_compare(project_id, version)
        except Exception as error:  # whatever went wrong, the serving model stays
            record = {"status": "failed", "reason": one_line(error)}
            if not isinstance(error, UserError):
                log.exception("Training %s failed", version)
        if record["status"] == "switched" and self.next_batch:
            record["next_to_annotate"] = self.next_to_annotate(project_id, replaced)
        self.last = {**self.last, **record}
        log.info("Training %s: %s (%s)", version, self.last["status"], self.last["reason"])

    def train_and_compare(self, project_id: int, version: str) -> dict:
        candidate_dir = self.serving.home / version
        export_file = candidate_dir.with_name(f"{version}-outputs") / "labelstudio_export.json"
        if not self.url:
            raise UserError("no Label Studio address: set LABEL_STUDIO_URL")
        client = connect(self.url, self.api_key)
        project = call(self.url, client.projects.get, id=project_id)
        control = project_control(project.label_config, f"project {project_id}", self.serving.tagger.schema.from_name)
        if export(client, self.url, project_id, export_file, control.from_name).sentences == 0:
            raise UserError(f"project {project_id} has no annotated tasks to train on")
        train(self.config, [export_file, *self.extra_data], candidate_dir, export_file.with_name("train.log"),
              ["--label_config", str(config_path(export_file)), "--choices_control", control.from_name])
        candidate, serving_labels = self.serving.load(candidate_dir), self.serving.tagger.schema.labels
        if candidate.schema.labels != serving_labels:  # no comparison on other labels: the project's config decides
            self.serving.switch(candidate, candidate_dir)
            return {"status": "switched", "reason": f"the project's labels {list(candidate.schema.labels)} are not "
                                                    f"the serving model's {list(serving_labels)}: switched to the "
                                                    "model trained with the project's labeling config"}
        comparison = compare(self.serving, candidate, candidate_dir)
        if comparison is None and len(held_out(candidate_dir)):
            return {"status": "kept", "reason": "the serving model was trained on every held-out sentence of "
                                                "the candidate: no fair comparison, so no switch"}
        if comparison is None:
            return self.without_held_out_sentences(candidate, candidate_dir)
        better = comparison["candidate"]["macro"]["f1"] >= comparison["serving"]["macro"]["f1"]
        if better:
            self.serving.switch(candidate, candidate_dir)
        return {"status": "switched" if better else "kept", "reason": verdict(comparison, better),
                "validation": comparison}

    def without_held_out_sentences(self, candidate, candidate_dir: Path) -> dict:
        """A small project's candidate trained on every sentence (the small recipe), so none is
        left to score both models on. Then the model trained on more of the project's annotations
        serves: with the same labels, more annotations is the better bet."""
        trained, serving = len(splits_as_trained(candidate_dir)[0]["train"]), self.serving.trained_texts()
        if serving is not None and trained <= len(serving):
            return {"status": "kept", "reason": f"no held-out sentence to compare on, and the candidate trained on "
                                                f"{trained} sentences, the serving model on {len(serving)}: no switch"}
        self.serving.switch(candidate, candidate_dir)
        return {"status": "switched", "reason": f"no held-out sentence to compare on (a small project trains on "
                                                f"every sentence): switched to the model trained on {trained} sentences, "
                                                f"more than the serving model's "
                                                f"{'unknown number' if serving is None else len(serving)}"}

    def next_to_annotate(self, project_id: int, replaced: str) -> dict:
        """The project's `Next to annotate` tab, chosen by the model just switched in (the order that
        saved annotations in eval.active_learning's simulation), in place of the replaced model's
        tab. A failure here is logged and recorded; the switch stands."""
        try:
            client = connect(self.url, self.api_key)
            open_tasks = self.scored_open_tasks(client, project_id)
            if not open_tasks:
                return {"tab": None, "tasks": 0, "open_tasks": 0}
            title = add_next_batch_tab(client, self.url, project_id, self.serving.version, open_tasks,
                                       self.next_batch, replaced)
            return {"tab": title, "tasks": min(self.next_batch, len(open_tasks)), "open_tasks": len(open_tasks)}
        except Exception as error:
            log.warning("The Next to annotate tab of project %s was not refreshed: %s", project_id, one_line(error),
                        exc_info=not isinstance(error, UserError))
            return {"failed": one_line(error)}

    def scored_open_tasks(self, client, project_id: int) -> list[tuple]:
        """(id, text, certainty) of the project's tasks that no one has annotated, scored by the
        serving model page by page, so that /predict requests take turns with it."""
        label_config = call(self.url, client.projects.get, id=project_id).label_config
        text_field = self.serving.schema_for(label_config, project_id).text_field
        scored = []
        tasks = call(self.url, client.tasks.list, project=project_id, page_size=PAGE, fields="all")
        for page in pages(iterate(self.url, tasks), PAGE):
            page = [{"id": task.id, "data": task.data} for task in page if not task.is_labeled]
            rows = self.serving.predictions(page, label_config, project_id) if page else []
            scored += [(task["id"], task["data"][text_field], row["score"]) for task, row in zip(page, rows)]
        return scored


def one_line(error: Exception) -> str:
    reason = str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
    return reason.splitlines()[0] if reason.strip() else type(error).__name__


def train(config: Path, data_files: list[Path], output_dir: Path, log_file: Path, options: list[str]) -> None:
    """`python -m train` in a child process at low priority, so that predictions keep answering."""
    command = [sys.executable, "-m", "train", "--config", str(config), "--data_files", *map(str, data_files),
               "--output_dir", str(output_dir), *options]
    with log_file.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(10))
    if done.returncode != 0:
        lines = log_file.read_text(errors="replace").strip().splitlines()
        raise UserError(f"training failed: {lines[-1] if lines else f'exit code {done.returncode}'} (log: {log_file})")


def compare(serving, candidate, candidate_dir: Path) -> dict | None:
    """Both models' reports on the candidate's held-out sentences (validation; test for a
    recipe without validation), less any the serving model was trained on (the splits are drawn
    anew from each run's data, so they can overlap); None if that leaves none."""
    validation = held_out(candidate_dir)
    seen = serving.trained_texts()  # None: not known, nothing left out
    keep = [i for i, text in enumerate(validation["text"]) if seen is None or text not in seen]
    if not keep:
        return None
    texts, gold = [validation["text"][i] for i in keep], np.array(validation["labels"])[keep]
    labels = candidate.schema.labels
    return {"sentences": len(keep), "left_out_seen_by_serving_model": None if seen is None else len(validation) - len(keep),
            "serving_version": serving.version,
            "serving": report(gold, apply_thresholds(serving.scores(texts), serving.tagger.thresholds), labels),
            "candidate": report(gold, apply_thresholds(candidate.scores(texts), candidate.thresholds), labels)}


def held_out(model_dir: Path):
    """The sentences a model was not trained on: its validation split, or its test split for a
    recipe without validation; empty for a small project trained on every sentence."""
    splits = splits_as_trained(model_dir)[0]
    return splits["validation"] if len(splits["validation"]) else splits["test"]


def verdict(comparison: dict, better: bool) -> str:
    candidate, serving = (comparison[name]["macro"]["f1"] for name in ("candidate", "serving"))
    return (f"validation macro-F1 {candidate:.3f}, {'not lower than' if better else 'lower than'} {serving:.3f} "
            f"of {comparison['serving_version']} on the same {comparison['sentences']} sentences")
