"""python -m tagger.predict --model DIR (or its earlier name, python -m eval.predict) --input FILE --output FILE.jsonl

Input: a text file with one sentence per line, a JSONL file with a `text` field per line, or
whole articles (`--format articles`: each .txt file, or each JSONL `text`, is split into
sentences). Output: JSONL, one object per sentence with `text`, `labels` (after the model's
saved thresholds) and `scores` (label -> probability); articles add `article` and `sentence_index`.
Input is read and written in chunks, so files of any size run in flat memory; the output file
appears only when complete. Several processes or GPUs share the work and write the same file:

    accelerate launch --multi_gpu --num_processes 4 -m tagger.predict --model DIR --input FILE --output FILE.jsonl
"""

import itertools
import json
import logging
import os
from pathlib import Path

from tqdm.auto import tqdm

from tagger.artifacts import atomic_file
from tagger.cli import ArgumentParser, UserError, add_model_option, add_tagger_options, run_command
from tagger.predictor import Tagger, tagger_from
from tagger.prepare import split_sentences

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


def predict_file(tagger: Tagger, input_path: Path, output_path: Path, kind: str = "auto",
                 process: int = 0, processes: int = 1, wait_for_everyone=lambda: None) -> dict:
    """Tag every sentence of input_path into output_path. With several processes (`accelerate
    launch`, torchrun), each reads the input, scores every processes-th chunk into a shard of its
    own, and the first merges the shards in input order: the same file as one process writes."""
    counts = {"sentences": 0, "empty": 0, "scored_here": 0}
    records = read_records(input_path, kind, counts)
    total = None if kind == "articles" else count_lines(input_path)  # one fast pass, for the ETA
    target = output_path if processes == 1 else shard(output_path, process)
    with atomic_file(target) as out, tqdm(total=total, desc="lines", unit=" line", mininterval=1,
                                          disable=process != 0) as progress:
        for index in itertools.count():
            chunk = list(itertools.islice(records, CHUNK))
            if not chunk:
                break
            if index % processes == process:
                write_tagged(out, tagger, chunk)
                counts["scored_here"] += len(chunk)
            counts["sentences"] += len(chunk)
            progress.n = counts["sentences"] + counts["empty"]
            progress.refresh()
    if processes > 1:
        wait_for_everyone()
        if process == 0:
            merge_shards(output_path, processes)
        wait_for_everyone()
    return counts


def write_tagged(out, tagger: Tagger, chunk: list[dict]) -> None:
    for record, tags in zip(chunk, tagger.tag([r["text"] for r in chunk])):
        record.update(labels=tags["labels"], scores={l: round(s, 5) for l, s in tags["scores"].items()})
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def shard(output_path: Path, process: int) -> Path:
    return output_path.with_name(f".{output_path.name}.shard-{process}")


def merge_shards(output_path: Path, processes: int) -> None:
    """Chunk k of the input is the (k // processes)-th chunk of shard k % processes: take the
    shards' chunks in turn until one has none left."""
    shards = [shard(output_path, process).open(encoding="utf-8") for process in range(processes)]
    try:
        with atomic_file(output_path) as out:
            for turn in itertools.count():
                lines = list(itertools.islice(shards[turn % processes], CHUNK))
                if not lines:
                    break
                out.writelines(lines)
    finally:
        for process, handle in enumerate(shards):
            handle.close()
            shard(output_path, process).unlink()


def count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


class OneProcess:
    process_index, num_processes, is_main_process = 0, 1, True

    def wait_for_everyone(self):
        pass


def process_state():
    """One process, or one per GPU (or CPU process) under `accelerate launch` / torchrun, which set
    WORLD_SIZE: accelerate (and torch) load only then, as the ONNX Runtime modes need neither."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return OneProcess()
    import torch
    from accelerate import PartialState
    return PartialState(cpu=not torch.cuda.is_available())


def main(argv: list[str]) -> None:
    parser = ArgumentParser("python -m tagger.predict", __doc__)
    add_model_option(parser)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True, help="JSONL file to write.")
    parser.add_argument("--format", choices=["auto", "lines", "jsonl", "articles"], default="auto",
                        help="auto: .jsonl files are JSONL, anything else one sentence per line.")
    add_tagger_options(parser)
    args = parser.parse_args(argv)
    state = process_state()  # first, so that each process's model goes to its own GPU
    tagger = tagger_from(args)
    try:
        counts = predict_file(tagger, args.input, args.output, args.format, state.process_index,
                              state.num_processes, state.wait_for_everyone)
    except UnicodeDecodeError as error:
        raise UserError(f"{args.input}: not UTF-8 (bad byte at offset {error.start})") from None
    if state.num_processes > 1:
        log.info("Process %d of %d scored %d of %d sentences (%d truncated to %d tokens)", state.process_index,
                 state.num_processes, counts["scored_here"], counts["sentences"], tagger.truncated, tagger.max_length)
    elif tagger.truncated:
        log.info("%d sentences were truncated to %d tokens", tagger.truncated, tagger.max_length)
    if state.is_main_process:
        log.info("Tagged %d sentences into %s (%d empty lines skipped)", counts["sentences"], args.output,
                 counts["empty"])


if __name__ == "__main__":
    run_command(main)
