"""A user's own labels: training on a five-label project with its own control names, and the
checks that stop a run before training, each with one line."""

import json
import subprocess
import sys

import pytest

from conftest import BUNDLED_EXPORTS, FIVE_LABEL_CONFIG, FIVE_LABELS, REPO, SEED_EXPORT, choice, five_label_tasks
from tagger.cli import UserError
from tagger.labels import of_model
from tagger.predictor import Tagger
from train.config import load_config
from train.data import load_data
from train.run import run


def config(*options):
    return load_config(["--config", str(REPO / "configs/smoke.yaml"), *map(str, options)])


def test_a_five_label_project_trains_and_its_folder_carries_the_labels(five_label_project, tmp_path):
    export, label_config = five_label_project
    model_dir = run(config("--data_files", export, "--label_config", label_config, "--output_dir", tmp_path / "m"))
    schema = of_model(model_dir)
    assert schema.labels == FIVE_LABELS and (schema.from_name, schema.to_name, schema.text_field) == (
        "events", "sentence", "sentence")
    assert (model_dir / "label_config.xml").read_text() == FIVE_LABEL_CONFIG
    assert json.loads((model_dir / "config.json").read_text())["id2label"]["4"] == "ceasefire"
    assert list(json.loads((model_dir / "thresholds.json").read_text())) == list(FIVE_LABELS)
    assert set(json.loads((model_dir / "metrics.json").read_text())["splits"]["test"]["systems"]["model"]
               ["per_class"]) == set(FIVE_LABELS)
    tagged = Tagger(model_dir).tag("Both sides agreed to a ceasefire.")
    assert list(tagged["scores"]) == list(FIVE_LABELS)


def errors_of(*options) -> str:
    with pytest.raises(UserError) as error:
        load_data(config(*options))
    return str(error.value)


def write(tmp_path, tasks, name="export.json"):
    path = tmp_path / name
    path.write_text(json.dumps(tasks))
    return path


def five_label_task(id, text, *labels):
    return {"id": id, "data": {"sentence": text, "article_id": f"a{id}"},
            "annotations": [{"id": 100 + id, "result": choice(*labels, from_name="events", to_name="sentence")}]}


def test_a_label_that_is_not_in_the_config_names_the_file_the_task_and_the_label(five_label_project, tmp_path):
    _, label_config = five_label_project
    export = write(tmp_path, [five_label_task(1, "a", "strike"), five_label_task(2, "b", "truce")])
    message = errors_of("--data_files", export, "--label_config", label_config)
    assert message.startswith(f"{export}, task 2, annotation 102: label(s) ['truce'] not in the labeling config")


def test_an_export_of_another_control_says_which_config_to_pass(five_label_project):
    export, label_config = five_label_project
    message = errors_of("--data_files", export)  # read with the bundled config: control `event` on data.text
    assert f"{export}, task" in message and "no text at data.text" in message
    assert f"pass --label_config {label_config}" in message


def test_results_under_another_control_name_are_an_error(five_label_project, tmp_path):
    _, label_config = five_label_project
    export = write(tmp_path, [{"id": 5, "data": {"sentence": "a"}, "annotations": [{"id": 9, "result": choice("strike")}]}])
    message = errors_of("--data_files", export, "--label_config", label_config)
    assert message.startswith(f"{export}, task 5, annotation 9: result from control 'event'; the labeling "
                              "config's Choices control is 'events'")


def test_a_task_without_the_configured_text_field_is_an_error(five_label_project, tmp_path):
    _, label_config = five_label_project
    export = write(tmp_path, [{"id": 3, "data": {"text": "a"}, "annotations": []}])
    message = errors_of("--data_files", export, "--label_config", label_config)
    assert message.startswith(f"{export}, task 3: no text at data.sentence (the field that Text 'sentence'")


def test_a_label_no_sentence_carries_stops_the_run_naming_it(five_label_project, tmp_path):
    _, label_config = five_label_project
    tasks = [
        {**task, "annotations": [{**a, "result": [{**r, "value": {"choices": [
            c for c in r["value"]["choices"] if c != "ceasefire"]}} for r in a["result"]]} for a in task["annotations"]]}
        for task in five_label_tasks()]
    export = write(tmp_path, tasks)
    message = errors_of("--data_files", export, "--label_config", label_config)
    assert message.startswith(f"label(s) ['ceasefire'] of {label_config} are on no annotated sentence")


def test_the_bundled_exports_with_a_project_of_more_labels_are_refused_unless_asked(five_label_project, tmp_path):
    export, label_config = five_label_project
    # The seed export as if from an earlier project with the same names, but without ceasefire.
    seed_as_sentence = write(tmp_path, [{**task, "data": {"sentence": task["data"]["text"]}, "annotations": [
        {**a, "result": [{**r, "from_name": "events", "to_name": "sentence"} for r in a["result"]]}
        for a in task["annotations"]]} for task in json.loads(SEED_EXPORT.read_text())], "old_project.json")
    message = errors_of("--data_files", export, seed_as_sentence, "--label_config", label_config)
    assert message.startswith(f"{seed_as_sentence}: labelled without ['ceasefire']")
    assert "--allow_label_mix true" in message
    data = load_data(config("--data_files", export, seed_as_sentence, "--label_config", label_config,
                            "--allow_label_mix", "true"))
    assert data.summary.sentences == 2 * len(five_label_tasks())


def test_the_bundled_exports_count_as_labelled_with_the_config_beside_them():
    data = load_data(config("--data_files", *BUNDLED_EXPORTS))  # data/label_config.xml lists all four
    assert data.schema.labels == ("withdrawal", "strike", "evacuation", "atrocity_claim")


SIX_TASKS = [five_label_task(1, "Troops withdrew.", "withdrawal"), five_label_task(2, "A missile hit.", "strike"),
             five_label_task(3, "Buses left.", "evacuation"), five_label_task(4, "Torture was reported.",
                                                                                "atrocity_claim"),
             five_label_task(5, "A ceasefire held.", "ceasefire", "withdrawal"),
             five_label_task(6, "A truce and strikes.", "ceasefire", "strike")]


def test_a_project_too_small_to_split_gets_one_line_from_the_command(five_label_project, tmp_path):
    _, label_config = five_label_project
    export = write(tmp_path, SIX_TASKS)
    result = subprocess.run([sys.executable, "-m", "train", "--config", "configs/smoke.yaml", "--data_files",
                             str(export), "--label_config", str(label_config), "--output_dir", str(tmp_path / "m")],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: too few annotated sentences to train: 6 sentences from 6 articles (withdrawal 2, "
                           "strike 2, evacuation 1, atrocity_claim 1, ceasefire 2); split by article into train ")
    assert "no training sentence carries" in last and "at least 3 articles" in last
    assert not (tmp_path / "m").exists()


def test_the_smallest_project_that_can_split_trains(five_label_project, tmp_path):
    _, label_config = five_label_project
    # Three articles per label: one for each split.
    tasks = [five_label_task(10 * k + i, f"sentence {k} {i}", label)
             for k, label in enumerate(FIVE_LABELS) for i in range(3)]
    for task in tasks:
        task["data"]["article_id"] = f"article-{task['id'] % 10}"
    model_dir = run(config("--data_files", write(tmp_path, tasks), "--label_config", label_config,
                           "--output_dir", tmp_path / "m"))
    assert of_model(model_dir).labels == FIVE_LABELS
