"""python -m eval --model DIR [--data FILE...] [--split test] [--mode MODE] [--output_dir DIR]

Scores Label Studio exports (by default the ones the model was trained on) with a trained model
and its saved thresholds, prints the per-class table and writes metrics.json (in --output_dir, by
default MODEL-outputs/eval/ beside the model folder). --mode scores as `eval.predict --mode` tags, to check what a faster mode costs.
"""

import logging
from pathlib import Path

from tagger.annotations import read_exports
from tagger.artifacts import trained_options, write_json
from tagger.cli import (ArgumentParser, UserError, add_model_option, add_output_dir_option, add_tagger_options,
                        default_output_dir, run_command)
from tagger.labels import LabelSchema
from tagger.metrics import apply_thresholds, evaluation, format_table, report
from tagger.predictor import Tagger, tagger_from
from train.run import splits_as_trained

log = logging.getLogger(__name__)

SPLITS = ("all", "train", "validation", "test")


def evaluation_rows(model_dir: Path, schema: LabelSchema, data_files: list[str], split: str):
    """(texts, multi-hot gold) to score: every sentence, or one split rebuilt as in training.
    Annotators' ties are resolved as in training, so gold means what the model learned."""
    if split == "all":
        sentences, summary = read_exports(data_files, schema, trained_options(model_dir)["tie_break"])
        log.info("Read %s", summary)
        return [s.text for s in sentences], [schema.multi_hot(s.labels) for s in sentences]
    splits, summary = splits_as_trained(model_dir, data_files)
    log.info("Read %s", summary)
    if not len(splits[split]):
        raise UserError(f"{model_dir} has no {split} split to score (a small project trains on every sentence, the "
                        "small recipe without validation): `python -m eval.crossval` with its options estimates quality")
    return list(splits[split]["text"]), list(splits[split]["labels"])


def evaluate(tagger: Tagger, data_files: list[str], split: str = "all") -> tuple[int, dict]:
    """(sentences scored, their report)."""
    texts, gold = evaluation_rows(tagger.model_dir, tagger.schema, data_files, split)
    return len(texts), report(gold, apply_thresholds(tagger.scores(texts), tagger.thresholds), tagger.schema.labels)


def main(argv: list[str]) -> None:
    parser = ArgumentParser("python -m eval", __doc__)
    add_model_option(parser)
    parser.add_argument("--data", nargs="+",
                        help="Label Studio JSON exports (default: the ones the model was trained on).")
    parser.add_argument("--split", choices=SPLITS, default="all",
                        help="Score every sentence (default), or one split rebuilt with the run's split seed.")
    add_tagger_options(parser, default_mode="fp32")  # the run's own figures, exactly
    add_output_dir_option(parser, "MODEL-outputs/eval")
    args = parser.parse_args(argv)
    data = args.data or trained_options(args.model)["data_files"]
    tagger = tagger_from(args)
    sentences, result = evaluate(tagger, data, args.split)
    print(format_table(result))
    output_dir = args.output_dir or default_output_dir(args.model, "eval")
    write_json(output_dir / "metrics.json", evaluation(args.model, data, {args.split: (sentences, {"model": result})},
                                                       mode=tagger.mode, rewrites=not args.no_rewrites))
    print(f"\nwrote {output_dir / 'metrics.json'}")


if __name__ == "__main__":
    run_command(main)
