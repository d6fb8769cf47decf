"""Articles -> sentences -> Label Studio import tasks.

python -m tagger.prepare --input seeds/ --output data/seed_tasks.json   (or python -m train.prepare)

Input: a folder of .txt articles (first line the title when a blank line follows it), .txt
files, or .jsonl files of articles with `text` (and optional `title`, `id`, `url`, `source`).
Each task carries the sentence plus article id, sentence index and title, the context that
annotators see and that keeps splits grouped by article.
"""

import hashlib
import json
import logging
from pathlib import Path

import pysbd

from tagger.artifacts import write_json
from tagger.cli import ArgumentParser, UserError, run_command

log = logging.getLogger(__name__)


def read_articles(path: Path):
    """Yield dicts with article_id, title, text (and source when known)."""
    if path.is_dir():
        for file in sorted(path.glob("*.txt")):
            yield from read_articles(file)
    elif path.suffix == ".jsonl":
        yield from read_jsonl_articles(path)
    elif path.is_file():
        yield read_text_article(path)
    else:
        raise UserError(f"{path}: no such file or folder")


def read_text_article(path: Path) -> dict:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    has_title = len(lines) > 1 and lines[0].strip() and not lines[1].strip()
    return {"article_id": path.stem, "title": lines[0].strip() if has_title else "",
            "text": "\n".join(lines[1:] if has_title else lines)}


def read_jsonl_articles(path: Path):
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                article = json.loads(line)
                text = article["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"{path}, line {number}: expected a JSON object with a 'text' field") from None
            key = article.get("id") or article.get("url") or text
            yield {"article_id": str(article.get("id") or hashlib.sha1(key.encode()).hexdigest()[:12]),
                   "title": article.get("title", ""), "text": text,
                   **({"source": article["source"]} if "source" in article else {})}


def split_sentences(text: str, segmenter=pysbd.Segmenter(language="en", clean=False)) -> list[str]:
    """Sentences in order; each line is split on its own, so bullets and captions stay apart."""
    sentences = []
    for line in text.splitlines():
        line = line.strip().lstrip("•*-–").strip()
        if line:
            sentences += [s.strip() for s in segmenter.segment(line) if s.strip()]
    return sentences


def article_tasks(article: dict) -> tuple[list[dict], int]:
    """Tasks for one article, and how many repeated sentences were left out."""
    tasks, seen = [], set()
    for sentence in split_sentences(article["text"]):
        if sentence in seen:
            continue
        seen.add(sentence)
        index = len(tasks)
        tasks.append({"data": {"text": sentence, "title": article["title"],
                               "article_id": article["article_id"], "sentence_index": index,
                               "sentence_id": f"{article['article_id']}-{index:03d}",
                               **({"source": article["source"]} if "source" in article else {})}})
    return tasks, len(split_sentences(article["text"])) - len(tasks)


def prepare(inputs: list[Path]) -> list[dict]:
    tasks, repeats, articles = [], 0, 0
    for path in inputs:
        for article in read_articles(path):
            more, skipped = article_tasks(article)
            tasks += more
            repeats += skipped
            articles += 1
    log.info("%d sentences from %d articles (%d repeated sentences within an article left out)",
             len(tasks), articles, repeats)
    return tasks


def main(argv: list[str]) -> None:
    parser = ArgumentParser("python -m tagger.prepare", __doc__)
    parser.add_argument("--input", type=Path, nargs="+", required=True, help="Articles: folder, .txt or .jsonl.")
    parser.add_argument("--output", type=Path, required=True, help="Label Studio tasks JSON to write.")
    args = parser.parse_args(argv)
    write_json(args.output, prepare(args.input))


if __name__ == "__main__":
    run_command(main)
