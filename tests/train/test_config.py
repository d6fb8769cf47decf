import dataclasses
import re

import pytest

from conftest import REPO
from train.config import ConfigError, TrainConfig, load_config

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_file_loads_and_reads_data_inside_the_repository(path):
    config = load_config(["--config", str(path)])
    assert isinstance(config, TrainConfig) and config.output_dir
    for data_file in config.data_files:  # a fresh clone has them: nothing outside the repository
        assert (REPO / data_file).resolve().is_relative_to(REPO) and (REPO / data_file).is_file(), data_file


def test_the_main_config_trains_on_every_bundled_export():
    bundled = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "data").glob("*_export.json"))
    assert sorted(load_config(["--config", str(REPO / "configs/news.yaml")]).data_files) == bundled


def test_a_config_inherits_its_base_and_overrides_it(tmp_path):
    (tmp_path / "base.yaml").write_text("learning_rate: 1e-4\nnum_train_epochs: 3\nseed: 5\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "variant.yaml").write_text("base: ../base.yaml\nlearning_rate: 3e-5\n")
    config = load_config(["--config", str(tmp_path / "sub" / "variant.yaml"), "--seed", "7"])
    assert (config.learning_rate, config.num_train_epochs, config.seed) == (pytest.approx(3e-5), 3.0, 7)


@pytest.mark.parametrize("files, message", [
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\n"}, "leads back to itself"),
    ({"a.yaml": "base: none.yaml\n"}, "none.yaml: config file not found"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "learning_rat: 1\n"}, "b.yaml: unknown option(s) ['learning_rat']"),
])
def test_a_bad_base_is_a_clear_error(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(["--config", str(tmp_path / "a.yaml")])


def test_command_line_wins_over_the_file():
    config = load_config(["--config", str(REPO / "configs/smoke.yaml"), "--max_steps", "2",
                          "--model_name_or_path", "some/path"])
    assert (config.max_steps, config.model_name_or_path) == (2, "some/path")
    assert config.learning_rate == pytest.approx(1e-3)  # still from the file


def test_yaml_numbers_written_as_strings_are_read_as_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 2e-5\nnum_train_epochs: 3\n")  # PyYAML reads 2e-5 as a string
    config = load_config(["--config", str(path)])
    assert config.learning_rate == pytest.approx(2e-5) and config.num_train_epochs == 3.0


@pytest.mark.parametrize("text, message", [
    ("learning_rat: 0.1\n", "unknown option(s) ['learning_rat']"),
    ("max_steps: many\n", "option 'max_steps' must be int, got 'many'"),
    ("max_steps: 2.5\n", "option 'max_steps' must be int"),
    ("class_weights: 3\n", "option 'class_weights' must be bool"),
    ("- a\n- b\n", "expected a mapping"),
    ("mixed_precision: fp8\n", "option 'mixed_precision' must be one of"),
    ("keep_options: [learning_rat]\n", "keep_options: unknown option(s) ['learning_rat']"),
    ("fixed_threshold: 1.5\n", "fixed_threshold must be in [0, 1), got 1.5"),
])
def test_bad_config_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(["--config", str(path)])
    assert str(error.value).startswith(str(path)) and message in str(error.value)


@pytest.mark.parametrize("option, value, message", [
    ("--fixed_threshold", "1.5", "fixed_threshold must be in [0, 1), got 1.5"),
    ("--threshold_positives", "-1", "threshold_positives must be at least 0, got -1"),
    ("--threshold_share", "1", "threshold_share must be in [0, 1), got 1"),
    ("--frozen_layers", "-1", "frozen_layers must be at least 0, got -1"),
    ("--max_class_weight", "0.5", "max_class_weight must be at least 1, got 0.5"),
])
def test_out_of_range_values_are_clear_errors(option, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config([option, value])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(["--config", str(tmp_path / "none.yaml")])


def test_unknown_command_line_option_is_an_error():
    with pytest.raises(ConfigError, match="unknown option"):
        load_config(["--learning_rat", "0.1"])


def test_every_trainer_option_is_an_option_and_reaches_the_trainer(tmp_path):
    from transformers import TrainingArguments

    from train.config import SET_BY_THE_RUN, config_parser
    from train.trainer import training_arguments
    options = {action.dest for action in config_parser()._actions}
    assert {f.name for f in dataclasses.fields(TrainingArguments)} <= options
    path = tmp_path / "c.yaml"
    path.write_text("lr_scheduler_type: cosine\ngradient_accumulation_steps: 2\ndataloader_drop_last: true\n"
                    "optim: adamw_torch\nlr_scheduler_kwargs: {}\n")
    config = load_config(["--config", str(path), "--torch_compile_mode", "reduce-overhead"])
    args = training_arguments(config, str(tmp_path / "checkpoints"))
    assert (args.lr_scheduler_type, args.gradient_accumulation_steps, args.dataloader_drop_last,
            args.torch_compile_mode) == ("cosine", 2, True, "reduce-overhead")
    assert set(SET_BY_THE_RUN) <= {f.name for f in dataclasses.fields(TrainingArguments)}


@pytest.mark.parametrize("text, message", [
    ("lr_scheduler_type: cosin\n", "option 'lr_scheduler_type' must be one of ['linear', 'cosine'"),
    ("save_total_limit: some\n", "option 'save_total_limit' must be"),
    ("eval_strategy: steps\n", "option 'eval_strategy' is set by the run: evaluation follows the validation split"),
    ("bf16: true\n", "option 'bf16' is set by the run: set mixed_precision"),
])
def test_trainer_options_are_checked_like_ours(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(["--config", str(path)])


def test_a_runs_saved_options_repeat_the_run(tmp_path):
    from train.config import options, to_yaml
    config = load_config(["--config", str(REPO / "configs/news.yaml"), "--lr_scheduler_type", "cosine",
                          "--gradient_accumulation_steps", "2"])
    (tmp_path / "train_config.yaml").write_text(to_yaml(config))
    again = load_config(["--config", str(tmp_path / "train_config.yaml")])
    assert options(again) == options(config)
    assert "hub_token" not in to_yaml(dataclasses.replace(config, hub_token="secret"))


def test_steps_per_epoch_count_optimizer_steps():
    from train.trainer import steps_per_epoch
    assert steps_per_epoch(TrainConfig(per_device_train_batch_size=8), 100) == 13
    assert steps_per_epoch(TrainConfig(per_device_train_batch_size=8, gradient_accumulation_steps=2), 100) == 7
