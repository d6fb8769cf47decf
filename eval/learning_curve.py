"""python -m eval.learning_curve --config configs/news.yaml [--sizes 100 250 500 1000] [--draws 3]
    [--first_draw 0] [--recipes small finetune probe] [--jobs 1] [--output_dir models/learning-curve]
    [training options]

How each recipe does with N annotated sentences, as a new project would have them. The data's
articles are split once (split_seed) into a pool, a dev part (validation_fraction) and test
articles (test_fraction, or the outlets of --test_outlets). For each size N and draw d, N sentences
are drawn at random from the pool (seeded by N and d), and every recipe trains on that same draw
with seed `seed + d` and is scored on the same dev and test sentences. Choose among recipes on
dev; report test.

Recipes:
  small, finetune, auto   `python -m train --recipe ...` on the draw (train/recipes.py)
  probe                   frozen sentence embeddings (sentence-transformers: the encoder with mean
                          pooling) + a class-weighted logistic regression per label (scikit-learn),
                          threshold 0.5: the baseline to beat
  setfit                  SetFit (`pip install setfit`): its defaults, one-vs-rest, 20 iterations,
                          on the same encoder
A recipe may carry training options: `small:learning_rate=5e-5,min_steps=150`.

Writes runs.jsonl (one line per run with its training options, appended as each finishes, so a
rerun skips what is done with the same options),
scores.npz (each run's dev and test scores), learning_curve.md (macro-F1, and the corrections an
annotator would make per sentence on a run's pre-annotations: mean ± std over the draws on which
every recipe scored) and
learning_curve.png. `--first_draw D` runs and tables draws D to draws - 1 only: a long curve (SetFit
at 1,000 takes about an hour a draw on 2 cores) can be spread over several runs, as every draw is
the same whichever runs before it. A draw in which a label has no sentence cannot train the
fine-tuning recipes: that run is recorded as failed, with the reason, counted in the table, and
that draw left out of every recipe's mean.
"""

import concurrent.futures
import dataclasses
import functools
import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
import typing
from pathlib import Path

import numpy as np
import yaml

from eval.baselines import SentenceEmbeddingProbe, SetFitBaseline
from eval.plots import learning_curve_plot
from tagger.artifacts import write_text_atomic
from tagger.cli import UserError, run_command
from tagger.metrics import apply_thresholds, report
from train.config import MACHINE_DEFAULTS, TrainConfig, checked, config_parser, on_command_line, options, parse_config
from tagger.predictor import Tagger
from train import recipes
from train.data import load_data
from train.model import encoder_path
from train.run import train_on
from train.splits import as_splits, merged_groups, rarest_label, split_indices, split_off_validation

log = logging.getLogger(__name__)

TRAINED = ("small", "finetune", "auto")
BASELINES = ("probe", "setfit")
# Where a run's model goes and the machine's defaults do not change what it learns, nor does
# keep_options once the recipe is resolved (the options it kept are there).
NOT_SETTINGS = ("output_dir", "overwrite_output_dir", "keep_options", *MACHINE_DEFAULTS)


@dataclasses.dataclass(frozen=True)
class Run:
    size: int
    draw: int
    recipe: str  # as given, options included

    @property
    def name(self) -> str:
        return f"{self.size}-{self.draw}-{self.recipe}"


def parse_recipe(recipe: str) -> tuple[str, dict]:
    """'small:learning_rate=5e-5,min_steps=150' -> ('small', {'learning_rate': 5e-5, 'min_steps': 150})."""
    name, _, options = recipe.partition(":")
    if name not in TRAINED + BASELINES:
        raise UserError(f"unknown recipe {name!r}; choose from {TRAINED + BASELINES}")
    fields = typing.get_type_hints(TrainConfig)
    overrides = {}
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        if key not in fields or not value:
            raise UserError(f"recipe {recipe!r}: {option!r} is not KEY=VALUE with a training option as KEY")
        # As in a config file: `true`, `8` and `[a, b]` are YAML.
        overrides[key] = checked(Path(f"recipe {recipe}"), key, yaml.safe_load(value), fields[key])
    if overrides and name in BASELINES:
        raise UserError(f"recipe {recipe!r}: {name} takes no training options")
    return name, overrides


class Harness:
    """The data split once into pool, dev and test, and the runs on draws from the pool."""

    def __init__(self, config):
        self.config = config
        self.data = load_data(config)
        self.sentences = self.data.sentences
        self.parts = dict(zip(("train", "validation", "test"), split_indices(
            self.sentences, config.validation_fraction, config.test_fraction, config.split_seed, config.test_outlets)))
        self.pool = self.parts["train"]
        self.groups, self.strata = merged_groups(self.sentences), rarest_label(self.sentences)  # for every draw's split
        self.embeddings = {}  # the probe's, per sentence: the frozen encoder gives the same in every run

    def draw(self, size: int, draw: int) -> np.ndarray:
        if size > len(self.pool):
            raise UserError(f"a draw of {size} sentences is larger than the {len(self.pool)} annotated sentences "
                            "outside the dev and test articles; give smaller --sizes")
        return np.sort(np.random.default_rng([size, draw]).choice(self.pool, size, replace=False))

    def texts(self, indices) -> list[str]:
        return [self.sentences[i].text for i in indices]

    def gold(self, indices) -> np.ndarray:
        return np.array([self.data.schema.multi_hot(self.sentences[i].labels) for i in indices])


HARNESS: Harness | None = None


def start_worker(config, threads: int) -> None:
    global HARNESS
    import torch
    if threads:
        torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    HARNESS = Harness(config)


def run_one(run: Run, output_dir: Path) -> dict:
    """Train and score one run; a UserError (a draw that cannot train) becomes a failed row."""
    harness = HARNESS
    drawn = harness.draw(run.size, run.draw)
    name, _ = parse_recipe(run.recipe)
    row = {"run": run.name, "size": run.size, "draw": run.draw, "recipe": run.recipe,
           "settings": run_settings(harness.config, run), "drawn_tasks": [harness.sentences[i].task for i in drawn]}
    started = time.perf_counter()
    try:
        if name in TRAINED:
            scores, thresholds = trained_scores(harness, drawn, run, output_dir)
        else:
            scores, thresholds = baseline_scores(harness, drawn, name, run.draw)
    except UserError as error:
        return {**row, "error": str(error)}
    labels = harness.data.schema.labels
    row.update(seconds=round(time.perf_counter() - started, 1), thresholds=thresholds)
    for part in ("validation", "test"):
        gold = harness.gold(harness.parts[part])
        result = report(gold, apply_thresholds(scores[part], thresholds), labels)
        row["dev" if part == "validation" else "test"] = {
            "macro_f1": result["macro"]["f1"], "f1": {label: result["per_class"][label]["f1"] for label in labels}}
    row["scores"] = {("dev" if part == "validation" else "test"): np.round(scores[part], 4).tolist()
                     for part in scores}
    return row


def run_config(config, run: Run, output_dir: Path) -> TrainConfig:
    """The options a run trains with: `python -m train --recipe NAME` on a draw of run.size
    (a baseline's: the config's, with the run's seed)."""
    name, overrides = parse_recipe(run.recipe)
    config = dataclasses.replace(config, seed=config.seed + run.draw, output_dir=str(output_dir / "runs" / run.name),
                                 overwrite_output_dir=True, int8_margins=False)  # scored in fp32
    if name in BASELINES:
        return config
    config, _ = recipes.resolve(dataclasses.replace(config, recipe=name), run.size)
    return dataclasses.replace(config, **overrides)


def run_settings(config, run: Run) -> dict:
    """What a run's scores depend on besides its draw, as stored with its row: a rerun reuses a
    row only where they are the same (a recipe whose settings changed trains again)."""
    return settings(run_config(config, run, Path()))


def same_settings(row: dict, config, run: Run) -> bool:
    """Whether the row was run with the settings `run` has now; an option added since the row was
    written ran at its default."""
    return "settings" in row and default_settings() | row["settings"] == run_settings(config, run)


@functools.cache
def default_settings() -> dict:
    return settings(TrainConfig())


def settings(config: TrainConfig) -> dict:
    plain = yaml.safe_load(yaml.safe_dump(options(config)))
    return json.loads(json.dumps({key: value for key, value in plain.items() if key not in NOT_SETTINGS}))


def trained_scores(harness: Harness, drawn, run: Run, output_dir: Path, parts=("validation", "test")):
    """`python -m train --recipe NAME` on the draw; fp32 scores of the parts (dev and test) from the saved folder."""
    config = run_config(harness.config, run, output_dir)
    train, validation = split_off_validation(drawn, harness.groups, harness.strata, config.validation_fraction,
                                             config.split_seed)
    splits = as_splits(harness.sentences, harness.data.schema, train, validation, harness.parts["test"])
    model_dir = Path(train_on(config, splits, harness.data))
    try:
        tagger = Tagger(model_dir, mode="fp32")
        scores = {part: tagger.scores(harness.texts(harness.parts[part])) for part in parts}
        return scores, tagger.thresholds
    finally:
        shutil.rmtree(model_dir, ignore_errors=True)  # a model per run would fill the disk


def baseline_scores(harness: Harness, drawn, name: str, draw: int, parts=("validation", "test")):
    encoder = encoder_path(harness.config.model_name_or_path, harness.config.allow_offline_fallback)
    baseline = (SentenceEmbeddingProbe if name == "probe" else SetFitBaseline)(
        harness.data.schema.labels, encoder, harness.config.seed + draw, harness.embeddings)
    baseline.fit(harness.texts(drawn), harness.gold(drawn))
    scores = {part: baseline.scores(harness.texts(harness.parts[part])) for part in parts}
    return scores, dict.fromkeys(harness.data.schema.labels, 0.5)


def learning_curve(config, sizes, draws: int, recipes_: list[str], jobs: int, first_draw: int = 0) -> str:
    if not 0 <= first_draw < draws:
        raise UserError(f"--first_draw {first_draw} must be from 0 to --draws - 1 ({draws - 1})")
    for recipe in recipes_:
        parse_recipe(recipe)  # an unknown recipe stops the command before any run
    harness = Harness(config)
    for size in sizes:
        harness.draw(size, 0)  # a draw larger than the pool likewise
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows_file = output_dir / "runs.jsonl"
    # Draw by draw, so that an interrupted curve has every size.
    wanted = [Run(size, draw, recipe) for draw in range(first_draw, draws) for size in sizes for recipe in recipes_]
    done, stale = reusable_rows(read_rows(rows_file), wanted, config)
    todo = [run for run in wanted if run.name not in done]
    log.info("Pool %d, dev %d, test %d sentences; %d runs to go, %d done before%s", len(harness.pool),
             len(harness.parts["validation"]), len(harness.parts["test"]), len(todo), len(done),
             f" ({stale} trained with other settings train again)" if stale else "")
    for row in run_all(todo, config, output_dir, jobs):
        done[row["run"]] = row
        with rows_file.open("a") as out:
            out.write(json.dumps(row) + "\n")
        log.info("%s: %s", row["run"], row.get("error") or f"test macro-F1 {row['test']['macro_f1']:.3f}, "
                                                          f"{row['seconds']} s")
    shutil.rmtree(output_dir / "runs", ignore_errors=True)  # the runs' models went as they were scored
    rows = [done[run.name] for run in wanted]
    save_scores(rows, output_dir / "scores.npz")
    text = markdown(rows, sizes, recipes_, draws - first_draw, harness.gold(harness.parts["test"]))
    write_text_atomic(output_dir / "learning_curve.md", text)
    learning_curve_plot(summary(rows, sizes, recipes_, macro_f1("test")), output_dir / "learning_curve.png")
    return text


def run_all(todo: list[Run], config, output_dir: Path, jobs: int):
    """Each run's row as it finishes: in this process, or in `jobs` worker processes (each with
    its share of the CPU threads; on a GPU they share the device)."""
    if jobs <= 1:
        start_worker(config, 0)
        logging.getLogger().setLevel(logging.INFO)
        for run in todo:
            yield run_one(run, output_dir)
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=start_worker, initargs=(config, threads)) as pool:
        for future in concurrent.futures.as_completed([pool.submit(run_one, run, output_dir) for run in todo]):
            yield future.result()


def reusable_rows(rows: list[dict], wanted: list[Run], config) -> tuple[dict, int]:
    """({run name: row} of the wanted runs done before with the same settings, how many were done
    with other settings); the file keeps every row."""
    wanted = {run.name: run for run in wanted}
    rows = [row for row in rows if row["run"] in wanted]
    same = {row["run"]: row for row in rows if same_settings(row, config, wanted[row["run"]])}
    return same, len({row["run"] for row in rows} - set(same))


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_scores(rows, path: Path) -> None:
    arrays = {f"{row['run']}/{part}": np.asarray(scores, dtype=np.float32)
              for row in rows for part, scores in row.get("scores", {}).items()}
    np.savez_compressed(path, **arrays)


def summary(rows, sizes, recipes_, value) -> dict:
    """{recipe: {size: (mean, std, runs, failed)}} of value(row) over the draws of that size on which
    every recipe scored: side by side, a draw one recipe refused (a label with no sentence) is left
    out of the others' means too."""
    result = {recipe: {} for recipe in recipes_}
    for size in sizes:
        of_size = [r for r in rows if r["size"] == size and r["recipe"] in result]
        refused = {r["draw"] for r in of_size if "error" in r}
        for recipe in recipes_:
            scored = [value(r) for r in of_size if r["recipe"] == recipe and r["draw"] not in refused]
            failed = sum(1 for r in of_size if r["recipe"] == recipe and "error" in r)
            result[recipe][size] = (float(np.mean(scored)) if scored else float("nan"),
                                    float(np.std(scored)) if scored else float("nan"), len(scored), failed)
    return result


def macro_f1(part: str):
    return lambda row: row[part]["macro_f1"]


def corrections(gold: np.ndarray):
    """A run's labels to add or remove per test sentence, were its predictions pre-annotations."""
    return lambda row: float((apply_thresholds(np.asarray(row["scores"]["test"]), row["thresholds"]) != gold).sum()
                             / len(gold))


def markdown(rows, sizes, recipes_, draws: int, test_gold: np.ndarray) -> str:
    lines = []
    for title, value in (("Macro-F1 on the test articles", macro_f1("test")),
                         ("Macro-F1 on the dev articles (choose recipes here)", macro_f1("dev")),
                         ("Corrections per test sentence, the labels an annotator would add or remove on the "
                          "run's pre-annotations (leaving them empty: "
                          f"{test_gold.sum() / len(test_gold):.3f})", corrections(test_gold))):
        lines += [f"# {title}, mean ± std over the draws every recipe scored", "",
                  "| recipe | " + " | ".join(f"N = {size}" for size in sizes) + " |", "|---|" + "---|" * len(sizes)]
        for recipe, by_size in summary(rows, sizes, recipes_, value).items():
            lines.append(f"| {recipe} | " + " | ".join(cell(*by_size[size], draws) for size in sizes) + " |")
        lines.append("")
    lines += ["# Seconds per run (median; training and scoring, model loading included)", "",
              "| recipe | " + " | ".join(f"N = {size}" for size in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for recipe in recipes_:
        lines.append(f"| {recipe} | " + " | ".join(
            f"{np.median(t):.0f}" if (t := [r['seconds'] for r in rows if r['recipe'] == recipe and r['size'] == size
                                            and 'seconds' in r]) else "-" for size in sizes) + " |")
    failures = [f"- {r['run']}: {r['error']}" for r in rows if "error" in r]
    if failures:
        lines += ["", "Failed runs:", *failures]
    return "\n".join(lines) + "\n"


def cell(mean, std, runs, failed, draws: int) -> str:
    if not runs:
        return f"failed ({failed})" if failed else "-"
    notes = ([f"{runs} of {draws} draws"] if runs < draws else []) + ([f"{failed} failed"] if failed else [])
    return f"{mean:.3f} ± {std:.3f}" + (f" ({', '.join(notes)})" if notes else "")


def main(argv: list[str]) -> None:
    parser = config_parser("python -m eval.learning_curve", __doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 250, 500, 1000],
                        help="Annotated sentences per draw (default 100 250 500 1000).")
    parser.add_argument("--draws", type=int, default=3, help="Random draws per size (default 3).")
    parser.add_argument("--first_draw", type=int, default=0,
                        help="Run and table draws from this one on (default 0): spreads a long curve over runs.")
    parser.add_argument("--recipes", nargs="+", default=["small", "finetune", "probe"],
                        help="Recipes to compare on every draw (default small finetune probe).")
    parser.add_argument("--jobs", type=int, default=1, help="Runs at a time, in worker processes (default 1).")
    config, options = parse_config(argv, parser)
    if "output_dir" not in on_command_line(parser, argv):
        config = dataclasses.replace(config, output_dir="models/learning-curve")
    if options.draws < 1 or min(options.sizes) < 1:
        raise UserError("--draws and --sizes must be at least 1")
    sys.stdout.write(learning_curve(config, options.sizes, options.draws, options.recipes, options.jobs,
                                    options.first_draw))


if __name__ == "__main__":
    run_command(main)
