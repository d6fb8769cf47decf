import json

import pytest

from conftest import SEED_EXPORT, annotation, choice, task
from tagger.annotations import ExportError
from tagger.annotations import read_export as read_export_with
from tagger.annotations import read_exports as read_exports_with
from tagger.labels import DEFAULT


def read_export(path, **options):
    return read_export_with(path, DEFAULT, **options)


def read_exports(paths):
    return read_exports_with(paths, DEFAULT)


def test_single_annotations_become_label_tuples(write_export):
    path = write_export([task(1, "a", annotation("strike", "evacuation")), task(2, "b", annotation())])
    sentences, summary = read_export(path)
    assert [s.labels for s in sentences] == [("strike", "evacuation"), ()]
    assert summary.sentences == 2 and summary.label_counts["strike"] == 1


def test_cancelled_annotations_are_ignored_and_counted(write_export):
    path = write_export([
        task(1, "a", annotation("strike", cancelled=True), annotation("withdrawal")),
        task(2, "b", annotation("strike", cancelled=True)),
        task(3, "c"),
    ])
    sentences, summary = read_export(path)
    assert [s.labels for s in sentences] == [("withdrawal",)]
    assert (summary.cancelled_annotations, summary.skipped_all_cancelled, summary.skipped_unannotated) == (2, 1, 1)


def test_majority_vote_and_tie_break(write_export):
    path = write_export([
        task(1, "a", annotation("strike"), annotation("strike", "withdrawal"), annotation("strike")),
        task(2, "b", annotation("evacuation"), annotation()),
    ])
    negative, _ = read_export(path)
    positive, _ = read_export(path, tie_break="positive")
    assert [s.labels for s in negative] == [("strike",), ()]
    assert [s.labels for s in positive] == [("strike",), ("evacuation",)]


def test_latest_ground_truth_wins_over_the_majority(write_export):
    path = write_export([task(1, "a", annotation("strike"), annotation("strike"),
                              annotation("withdrawal", ground_truth=True, updated="2026-01-01"),
                              annotation("evacuation", ground_truth=True, updated="2026-02-01"))])
    sentences, _ = read_export(path)
    assert sentences[0].labels == ("evacuation",)


def test_several_files_combine_and_keep_their_task_origin(write_export):
    first = write_export([task(1, "a", annotation("strike"))], "one.json")
    second = write_export([task(1, "b", annotation())], "two.json")
    sentences, summary = read_exports([first, second])
    assert [s.task for s in sentences] == [f"{first}#1", f"{second}#1"]
    assert summary.tasks == 2


def test_article_id_groups_sentences_and_task_is_the_fallback(write_export):
    path = write_export([task(1, "a", annotation(), article="art-1"), task(2, "b", annotation())])
    sentences, _ = read_export(path)
    assert [s.group for s in sentences] == ["art-1", f"{path}#2"]


def test_bom_is_accepted(write_export):
    path = write_export(b"\xef\xbb\xbf" + b'[{"id": 1, "data": {"text": "a"}, "annotations": []}]')
    assert read_export(path)[1].tasks == 1


def test_the_committed_seed_export_reads_completely():
    sentences, summary = read_export(SEED_EXPORT)
    assert summary.sentences == summary.tasks == len(sentences) > 100
    assert all(summary.label_counts[label] >= 10 for label in summary.label_counts)


BAD_EXPORTS = [
    ("", "the file is empty"),
    ("[{\"id\": 1, ", "not valid JSON"),
    ("id,text,event\n1,hello,strike\n", "looks like a CSV export"),
    ('[{"id": 1, "text": "a", "event": "strike"}]', "JSON-MIN export"),
    ('{"id": 1}', "expected a list of tasks"),
    (b"[\xff\xfe]", "not UTF-8"),
    ([task(7, "a", annotation("bombing"))], "task 7, annotation None: label(s) ['bombing'] not in the labeling config"),
    ([{"id": 8, "data": {"title": "t"}, "annotations": []}], "task 8: no text at data.text"),
    (["just a string"], "task #0: expected a task object"),
    ([task(9, "a"), task(9, "b")], "task 9: duplicated task id"),
    ([task(10, "a", {"id": 3, "result": [{"from_name": "sentiment", "value": {"choices": ["x"]}}]})],
     "task 10, annotation 3: result from control 'sentiment'"),
    ([task(11, "a", {"id": 4, "result": [{"from_name": "event", "value": {"choices": "strike"}}]})],
     "task 11, annotation 4: value.choices is not a list"),
    ([task(12, "a", {"id": 5, "result": "strike"})], "task 12, annotation 5: 'result' is not a list"),
]


@pytest.mark.parametrize("content, message", BAD_EXPORTS, ids=[m for _, m in BAD_EXPORTS])
def test_bad_exports_name_the_file_the_task_and_the_problem(write_export, content, message):
    path = write_export(content)
    with pytest.raises(ExportError) as error:
        read_export(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="file not found"):
        read_export(tmp_path / "nope.json")


def test_a_hundred_thousand_task_export_reads(tmp_path):
    tasks = [{"id": i, "data": {"text": f"sentence {i}", "article_id": f"a{i // 20}"},
              "annotations": [{"id": i, "result": [] if i % 3 else choice("strike")}]} for i in range(100_000)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(tasks))
    sentences, summary = read_export(path)
    assert len(sentences) == 100_000 and summary.label_counts["strike"] == 33_334
