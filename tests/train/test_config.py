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
])
def test_bad_config_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(["--config", str(path)])
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(["--config", str(tmp_path / "none.yaml")])


def test_unknown_command_line_option_is_an_error():
    with pytest.raises(ConfigError, match="unknown option"):
        load_config(["--learning_rat", "0.1"])
