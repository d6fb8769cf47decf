import json

from conftest import REPO
from tagger.prepare import article_tasks, prepare, read_text_article, split_sentences


def test_lines_are_split_into_sentences_and_bullets_dropped():
    text = "  • Kyiv was shelled. Residents fled.\n\nCaption without a full stop\n"
    assert split_sentences(text) == ["Kyiv was shelled.", "Residents fled.", "Caption without a full stop"]


def test_title_line_is_read_when_a_blank_line_follows(tmp_path):
    path = tmp_path / "a1.txt"
    path.write_text("The Title\n\nFirst sentence. Second one.\n")
    article = read_text_article(path)
    assert (article["article_id"], article["title"]) == ("a1", "The Title")
    tasks, repeats = article_tasks(article)
    assert [t["data"]["text"] for t in tasks] == ["First sentence.", "Second one."]
    assert tasks[1]["data"] == {"text": "Second one.", "title": "The Title", "article_id": "a1",
                                "sentence_index": 1, "sentence_id": "a1-001"}
    assert repeats == 0


def test_repeated_sentences_in_an_article_are_counted_not_kept():
    tasks, repeats = article_tasks({"article_id": "x", "title": "", "text": "Same. Other.\nSame."})
    assert [t["data"]["text"] for t in tasks] == ["Same.", "Other."] and repeats == 1


def test_jsonl_articles(tmp_path):
    path = tmp_path / "articles.jsonl"
    path.write_text(json.dumps({"id": "n1", "title": "T", "source": "bbc", "text": "One. Two."}) + "\n")
    tasks = prepare([path])
    assert [(t["data"]["article_id"], t["data"]["source"]) for t in tasks] == [("n1", "bbc")] * 2


def test_committed_seed_tasks_are_what_prepare_makes_from_seeds():
    assert prepare([REPO / "seeds"]) == json.loads((REPO / "data" / "seed_tasks.json").read_text())
