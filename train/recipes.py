"""Which settings a run trains with, for the amount of data it is given.

A config in configs/ is tuned for the bundled corpus's thousands of sentences: a validation split
for early stopping and thresholds, a few epochs. A new project's first few hundred annotations
leave a validation split of a handful of sentences and a few dozen optimizer steps, and that
recipe then loses to a linear probe on frozen embeddings (docs/results.md). The small
recipe trains on every annotated sentence for three epochs and at least 60 steps, starts the
head from a linear probe, and uses one threshold for every label but the rarest. `auto` picks it
below the crossover measured on the bundled corpus's learning curve. Its settings replace the config
file's, but not an option given on the command line or named in keep_options.
"""

import dataclasses

from train.config import TrainConfig

# Below this many annotated sentences `auto` takes the small recipe: about where the bundled
# corpus's learning curve (eval.learning_curve) crosses over, between 2,000 (the small recipe ahead)
# and the whole pool's 3,410 (level): docs/results.md#small-data-the-learning-curve-2026-12-04.
SMALL_DATA_LIMIT = 3500

SMALL = dict(
    validation_fraction=0.0,  # every annotated sentence but the test split trains
    num_train_epochs=3,  # and at least min_steps steps: many epochs over a few hundred sentences
    min_steps=60,
    learning_rate=1e-4,
    head_init="probe",
    # The class-weighted loss balances each label's positives and negatives, so 0.5 is its
    # balance point; thresholds tuned on a few validation sentences did worse. A label with only a
    # handful of positives is learnt from those alone, and unseen positives score lower: below 15
    # positives the threshold falls in proportion (docs/results.md#thresholds-for-rare-labels-2026-12-07),
    # and on fewer than one sentence in 20 lower still: among many negatives its positives are learnt
    # by heart (docs/results.md#a-rare-label-in-a-larger-project-2026-12-07).
    fixed_threshold=0.5,
    threshold_positives=15,
    threshold_share=0.05,
)


def resolve(config: TrainConfig, sentences: int) -> tuple[TrainConfig, str]:
    """(the config with the recipe's settings, why this recipe) for `sentences` annotated
    sentences; the returned config names the recipe it used, never 'auto'."""
    if config.recipe == "finetune":
        return config, "asked for (--recipe finetune): the config's settings"
    if config.recipe == "small":
        return small(config), "asked for (--recipe small)" + kept(config)
    if sentences < SMALL_DATA_LIMIT:
        return small(config), (f"{sentences} annotated sentences, fewer than {SMALL_DATA_LIMIT}: below that the "
                               "small-data recipe scored higher (--recipe finetune to use the config's settings)"
                               + kept(config))
    return (dataclasses.replace(config, recipe="finetune"),
            f"{sentences} annotated sentences, at least {SMALL_DATA_LIMIT}: the config's settings "
            "(--recipe small for the small-data recipe)")


def small(config: TrainConfig) -> TrainConfig:
    """The config with the small recipe's settings, but for those it keeps (keep_options: the
    command line's, and any the config file names)."""
    return dataclasses.replace(config, recipe="small",
                               **{key: value for key, value in SMALL.items() if key not in config.keep_options})


def kept(config: TrainConfig) -> str:
    """The log's note of the recipe's settings that the run keeps as given."""
    given = [f"{key} {getattr(config, key)}" for key in SMALL if key in config.keep_options]
    return "; as given: " + ", ".join(given) if given else ""
