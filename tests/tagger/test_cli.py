"""One command-line convention for every command: options with underscores, hyphens accepted."""

import re
import subprocess
import sys

import pytest

from conftest import REPO
from tagger.cli import ArgumentParser, add_model_option, add_tagger_options

COMMANDS = ["train", "eval", "eval.predict", "eval.report", "eval.crossval", "eval.bench", "eval.audit",
            "eval.audit_flips", "train.prepare", "tagger.predict", "tagger.prepare",
            *(f"labelstudio {command}" for command in ("import", "export", "predict", "serve")), "train.labelstudio serve"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_spells_options_one_way_and_accepts_the_other(command):
    result = subprocess.run([sys.executable, "-m", *command.split(), "--help"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = result.stdout[result.stdout.index("\noptions:\n"):]  # not the description's examples
    options = set(re.findall(r"--[a-z][a-z0-9_-]*", listed))
    assert "--help" in options and len(options) > 2
    for option in options:
        name = option[2:]
        assert "--" + name.replace("-", "_") in options and "--" + name.replace("_", "-") in options, option


def test_both_spellings_reach_the_same_option(tmp_path):
    parser = ArgumentParser("test")
    add_model_option(parser)
    add_tagger_options(parser)
    model = str(tmp_path)  # --model must name a folder (or a Hub id)
    underscored = parser.parse_args(["--model", model, "--batch_size", "8", "--no_rewrites"])
    hyphenated = parser.parse_args(["--model", model, "--batch-size", "8", "--no-rewrites"])
    assert vars(underscored) == vars(hyphenated) and underscored.batch_size == 8 and underscored.no_rewrites


def test_an_abbreviated_option_is_an_error():
    parser = ArgumentParser("test")
    add_tagger_options(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--batch", "8"])
