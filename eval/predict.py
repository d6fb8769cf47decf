"""python -m eval.predict --model DIR --input FILE --output FILE.jsonl

Input: a text file with one sentence per line, a JSONL file with a `text` field per line, or
whole articles (`--format articles`: each .txt file, or each JSONL `text`, is split into
sentences). Output: JSONL, one object per sentence with `text`, `labels` (after the model's
saved thresholds) and `scores` (label -> probability); articles add `article` and `sentence_index`.
Input is read and written in chunks, so files of any size run in flat memory; the output file
appears only when complete.
"""

import itertools
import json
import logging
from pathlib import Path

from tqdm.auto import tqdm

from tagger.artifacts import atomic_file
from tagger.cli import (ArgumentParser, UserError, add_model_option, add_tagger_options, run_command,
                        tagger_from)
from tagger.predictor import Tagger
from train.prepare import split_sentences

log = logging.getLogger(__name__)

CHUNK = 2048  # sentences scored together: enough for length-sorted batches to pad little


def read_records(path: Path, kind: str, counts: dict):
    """Yield {'text': ...} per sentence (plus article context); empty lines are counted."""
    if not path.is_file():
        raise UserError(f"{path}: input file not found")
    is_jsonl = kind == "jsonl" or (kind in ("auto", "articles") and path.suffix == ".jsonl")
    with path.open(encoding="utf-8-sig") as handle:
        if kind == "articles" and not is_jsonl:
            yield from article_records(handle.read(), path.stem)
            return
        for number, line in enumerate(handle, 1):
            text = jsonl_text(line, path, number) if is_jsonl else line.strip()
            if kind == "articles":
                yield from article_records(text or "", f"{path.stem}:{number}")
            elif text:
                yield {"text": text}
            else:
                counts["empty"] += 1


def jsonl_text(line: str, path: Path, number: int) -> str | None:
    if not line.strip():
        return None
    try:
        text = json.loads(line)["text"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"{path}, line {number}: expected a JSON object with a 'text' field") from None
    if not isinstance(text, str):
        raise UserError(f"{path}, line {number}: 'text' is not a string")
    return text.strip()


def article_records(text: str, article: str):
    for index, sentence in enumerate(split_sentences(text)):
        yield {"article": article, "sentence_index": index, "text": sentence}


def predict_file(tagger: Tagger, input_path: Path, output_path: Path, kind: str = "auto") -> dict:
    counts = {"sentences": 0, "empty": 0}
    records = read_records(input_path, kind, counts)
    total = None if kind == "articles" else count_lines(input_path)  # one fast pass, for the ETA
    with atomic_file(output_path) as out, tqdm(total=total, desc="lines", unit=" line", mininterval=1) as progress:
        while chunk := list(itertools.islice(records, CHUNK)):
            for record, tags in zip(chunk, tagger.tag([r["text"] for r in chunk])):
                record.update(labels=tags["labels"], scores={l: round(s, 5) for l, s in tags["scores"].items()})
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            counts["sentences"] += len(chunk)
            progress.n = counts["sentences"] + counts["empty"]
            progress.refresh()
    return counts


def count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def main(argv: list[str]) -> None:
    parser = ArgumentParser("python -m eval.predict", __doc__)
    add_model_option(parser)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True, help="JSONL file to write.")
    parser.add_argument("--format", choices=["auto", "lines", "jsonl", "articles"], default="auto",
                        help="auto: .jsonl files are JSONL, anything else one sentence per line.")
    add_tagger_options(parser)
    args = parser.parse_args(argv)
    tagger = tagger_from(args)
    try:
        counts = predict_file(tagger, args.input, args.output, args.format)
    except UnicodeDecodeError as error:
        raise UserError(f"{args.input}: not UTF-8 (bad byte at offset {error.start})") from None
    log.info("Tagged %d sentences into %s (%d empty lines skipped, %d sentences truncated to %d tokens)",
             counts["sentences"], args.output, counts["empty"], tagger.truncated, tagger.max_length)


if __name__ == "__main__":
    run_command(main)
