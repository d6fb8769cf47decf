"""python -m eval.active_learning --config configs/news.yaml [--round_recipe probe] [--seeds 3]
    [--start 50] [--step 50] [--budget 2000] [--strategies least-certain diverse random]
    [--output_dir models/active-learning] [training options]

Which order of annotation saves annotations? A simulation on annotated
data, as a project would go: the articles are split as eval.learning_curve splits them (a pool,
dev and test articles); each run starts from --start sentences drawn at random from the pool, and
each round trains the recipe on what is annotated so far, scores the test articles and then adds
--step sentences from the rest of the pool, chosen by the strategy:

  least-certain   the lowest certainty first: the order of the `Least certain first` tab that
                  `python -m labelstudio predict` adds (labelstudio/predictions.py)
  diverse         the least certain, spread over what they are about: of the ten times --step
                  least certain, one from each of --step clusters of their sentence embeddings
                  (labelstudio/selection.py: the `Next to annotate` tab of `labelstudio predict`)
  random          a random draw, as annotating in import order would be

Every strategy starts from the same draw for a seed. The target is 95% of the macro-F1 that the
same recipe reaches when trained on the whole pool; the report gives, per strategy, the
annotations each seed needed to reach it (mean over seeds), and the test macro-F1 at each size.

Recipes: probe (frozen sentence embeddings + class-weighted logistic regression: seconds a round),
or small / finetune / auto (`python -m train --recipe ...`: minutes a round on a CPU).
Writes runs.jsonl (one line per round with its training options, appended; a rerun continues from
the rounds of the same recipe and options) and active_learning.md.
"""

import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np

from eval.learning_curve import (TRAINED, Harness, Run, baseline_scores, parse_recipe, run_settings, same_settings,
                                 trained_scores)
from labelstudio.predictions import certainty
from labelstudio.selection import next_batch
from tagger.artifacts import write_text_atomic
from tagger.cli import UserError, run_command
from tagger.metrics import apply_thresholds, report
from train.config import config_parser, on_command_line, parse_config

log = logging.getLogger(__name__)

STRATEGIES = ("least-certain", "diverse", "random")
TARGET = 0.95  # of the full pool's macro-F1


def scored(harness: Harness, recipe: str, annotated: np.ndarray, seed: int, output_dir: Path):
    """(test macro-F1, certainty of each pool sentence) of the recipe trained on `annotated`."""
    recipe_name, _ = parse_recipe(recipe)
    harness.parts["pool"] = harness.pool  # scored with dev and test: the next round chooses from it
    if recipe_name in TRAINED:
        scores, thresholds = trained_scores(harness, annotated, Run(len(annotated), seed, recipe), output_dir,
                                            parts=("test", "pool"))
    else:
        scores, thresholds = baseline_scores(harness, annotated, recipe_name, seed, parts=("test", "pool"))
    labels = harness.data.schema.labels
    f1 = report(harness.gold(harness.parts["test"]), apply_thresholds(scores["test"], thresholds), labels)
    return f1["macro"]["f1"], certainty(scores["pool"], thresholds)


def next_sentences(strategy: str, harness: Harness, annotated: np.ndarray, pool_certainty: np.ndarray,
                   step: int, rng: np.random.Generator, embeddings: dict) -> np.ndarray:
    """`step` pool sentences not yet annotated, chosen by the strategy (`embeddings`: a cache for diverse)."""
    left = np.flatnonzero(~np.isin(harness.pool, annotated))
    step = min(step, len(left))
    if strategy == "random":
        chosen = rng.choice(left, step, replace=False)
    elif strategy == "least-certain":
        chosen = left[np.argsort(pool_certainty[left], kind="stable")[:step]]
    else:
        chosen = left[next_batch(pool_certainty[left], harness.texts(harness.pool[left]), step, rng, embeddings)]
    return np.sort(np.concatenate([annotated, harness.pool[chosen]]))


def simulate(config, recipe: str, seeds: int, start: int, step: int, budget: int,
             strategies: tuple[str, ...] = STRATEGIES) -> str:
    harness, output_dir = Harness(config), Path(config.output_dir)
    if start > len(harness.pool) or start < 1 or step < 1:
        raise UserError(f"--start must be between 1 and the pool's {len(harness.pool)} sentences, --step at least 1")
    output_dir.mkdir(parents=True, exist_ok=True)
    rows_file = output_dir / "runs.jsonl"

    def round_settings(seed, annotated: int):
        return run_settings(config, Run(annotated, seed, recipe))

    # A rerun goes on from the rounds of the same recipe trained with the same options; other
    # rounds stay in the file.
    done = {(r["strategy"], r["seed"], r["annotated"]): r for r in read_rows(rows_file)
            if r["recipe"] == recipe and same_settings(r, config, Run(r["annotated"], r["seed"], recipe))}
    embeddings = {}  # text -> sentence embedding, for the diverse strategy

    def round_row(strategy, seed, annotated):
        key = (strategy, seed, len(annotated))
        if key not in done:
            f1, pool_certainty = scored(harness, recipe, annotated, seed, output_dir)
            done[key] = {"strategy": strategy, "seed": seed, "annotated": len(annotated), "recipe": recipe,
                         "settings": round_settings(seed, len(annotated)), "test_macro_f1": f1,
                         "tasks": [harness.sentences[i].task for i in annotated],
                         "pool_certainty": np.round(pool_certainty, 5).tolist()}
            with rows_file.open("a") as rows:
                rows.write(json.dumps(done[key]) + "\n")
            log.info("%s seed %d, %d annotated: test macro-F1 %.3f", strategy, seed, len(annotated), f1)
        return done[key]

    full = round_row("full", 0, harness.pool)["test_macro_f1"]
    for seed in range(seeds):
        first = np.sort(np.random.default_rng([start, seed]).choice(harness.pool, start, replace=False))
        for strategy in strategies:
            rng, annotated = np.random.default_rng([seed, 1]), first
            while True:
                row = round_row(strategy, seed, annotated)
                if len(annotated) >= min(budget, len(harness.pool)):
                    break
                annotated = next_sentences(strategy, harness, annotated, np.array(row["pool_certainty"]),
                                           min(step, budget - len(annotated)), rng, embeddings)
    text = markdown(list(done.values()), full, recipe, seeds, start, step, budget, len(harness.pool), strategies)
    write_text_atomic(output_dir / "active_learning.md", text)
    return text


def needed(rows: list[dict], target: float) -> int | None:
    """The fewest annotations at which a run reached the target (None: not within the budget)."""
    reached = [row["annotated"] for row in rows if row["test_macro_f1"] >= target]
    return min(reached) if reached else None


def markdown(rows, full: float, recipe: str, seeds: int, start: int, step: int, budget: int, pool: int,
             strategies: tuple[str, ...]) -> str:
    target, rows = TARGET * full, [r for r in rows if r["strategy"] in strategies and r["seed"] < seeds]
    lines = [f"Recipe {recipe}; pool {pool} sentences; full pool: test macro-F1 {full:.3f}; target "
             f"{TARGET:.0%} of it: {target:.3f}. Start {start} at random, +{step} a round, up to {budget}.", "",
             "| strategy | annotations to the target, per seed | mean |", "|---|---|---|"]
    for strategy in strategies:
        counts = [needed([r for r in rows if r["strategy"] == strategy and r["seed"] == seed], target)
                  for seed in range(seeds)]
        reached = [c for c in counts if c is not None]
        mean = f"{np.mean(reached):.0f}" if len(reached) == len(counts) else f"not reached within {budget} by all"
        lines.append(f"| {strategy} | {', '.join(str(c) if c else f'> {budget}' for c in counts)} | {mean} |")
    sizes = sorted({r["annotated"] for r in rows})
    curves = {strategy: [np.mean([r["test_macro_f1"] for r in rows if r["strategy"] == strategy and r["annotated"] == n]
                                 or [np.nan]) for n in sizes] for strategy in strategies}
    shown = [i for i, n in enumerate(sizes) if len(sizes) <= 12 or n == sizes[-1]
             or n in (start, 100, 250, 500, 750, 1000, 1500, 2000)]
    random_last = curves["random"][-1] if "random" in curves else None
    lines += ["", "Test macro-F1, mean over seeds" + ("" if random_last is None else
              f"; the last column: the fewest annotations at which the mean reaches random order's mean at "
              f"{sizes[-1]} ({random_last:.3f})") + ":", "",
              "| strategy | " + " | ".join(f"N = {sizes[i]}" for i in shown) + " |"
              + ("" if random_last is None else " to random's last |"),
              "|---|" + "---|" * (len(shown) + (random_last is not None))]
    for strategy, curve in curves.items():
        row = f"| {strategy} | " + " | ".join(f"{curve[i]:.3f}" for i in shown) + " |"
        if random_last is not None:
            row += f" {next((n for n, f1 in zip(sizes, curve) if f1 >= random_last), '-')} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def main(argv: list[str]) -> None:
    parser = config_parser("python -m eval.active_learning", __doc__)
    parser.add_argument("--round_recipe", default="probe", help="The recipe trained each round (default probe).")
    parser.add_argument("--seeds", type=int, default=3, help="Runs per strategy, each from its own first draw.")
    parser.add_argument("--start", type=int, default=50, help="Annotations drawn at random to begin with.")
    parser.add_argument("--step", type=int, default=50, help="Annotations added per round.")
    parser.add_argument("--budget", type=int, default=2000, help="Stop at this many annotations.")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES),
                        help="The orders to simulate (default: all three).")
    config, options = parse_config(argv, parser)
    parse_recipe(options.round_recipe)  # an unknown recipe stops here, before the data is read
    if "output_dir" not in on_command_line(parser, argv):
        config = dataclasses.replace(config, output_dir="models/active-learning")
    sys.stdout.write(simulate(config, options.round_recipe, options.seeds, options.start, options.step, options.budget,
                              tuple(dict.fromkeys(options.strategies))))


if __name__ == "__main__":
    run_command(main)
