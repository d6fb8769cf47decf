"""What every command shares: its argument parser and options, logging, and bad input reported
as one clear line.

The convention: options are spelled with underscores, as the Hugging Face options of
`python -m train` are (`--output_dir`, `--per_device_train_batch_size`); every command accepts
the hyphenated spelling too (`--output-dir`). Options that several commands take are defined
once, here.
"""

import argparse
import logging
import sys
from pathlib import Path

from tagger.errors import UserError  # noqa: F401  (imported from here by every command)
from tagger.hub import in_hub_cache, model_folder

# The Tagger's modes (tagger/predictor.py), here so that parsers need not load torch.
MODES = ("auto", "fp32", "bf16", "onnx-fp32", "onnx-int8-checked", "onnx-int8")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the repository's convention: `--an_option` also answers to `--an-option`,
    no abbreviations, the module docstring as the help text."""

    def __init__(self, prog: str, description: str | None = None, **kwargs):
        super().__init__(prog=prog, description=description, allow_abbrev=False,
                         formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def add_argument(self, *names, **kwargs):
        return super().add_argument(*spellings(names), **kwargs)


def spellings(names) -> list[str]:
    """`--a-b` or `--a_b` -> ['--a_b', '--a-b']; positional names stay as they are."""
    result = []
    for name in names:
        if name.startswith("--"):
            for spelling in ("--" + name[2:].replace("-", "_"), "--" + name[2:].replace("_", "-")):
                if spelling not in result:
                    result.append(spelling)
        else:
            result.append(name)
    return result


def add_model_option(parser: argparse.ArgumentParser, required: bool = True, help: str = "") -> None:
    parser.add_argument("--model", type=model_folder, required=required,
                        help=help or "Model folder written by `python -m train`, or its Hub model id (org/name).")


def add_tagger_options(parser: argparse.ArgumentParser, default_mode: str = "auto") -> None:
    """How the Tagger scores: --mode, --batch_size, --no_rewrites."""
    parser.add_argument("--mode", choices=MODES, default=default_mode,
                        help=f"auto: the fastest mode whose labels match fp32's on this machine (bf16 on a CPU "
                             "with bf16 units, onnx-int8-checked on other CPUs, fp32 on a GPU; the log says "
                             "which). fp32: PyTorch, the scores of transformers' pipeline. bf16: PyTorch in bf16 "
                             "(GPUs, CPUs with AVX512-BF16/AMX). onnx-fp32: ONNX Runtime, fp32's scores to float "
                             "rounding. onnx-int8-checked: int8 scores, a sentence scored again in fp32 when "
                             "a label is in doubt (labels as fp32's). onnx-int8: int8 alone (fastest; about 0.3%% "
                             f"of labels differ). Default: {default_mode}.")
    parser.add_argument("--batch_size", type=int,
                        help="Sentences per batch (default: 256 for fp32 and bf16 on a GPU, 64 otherwise).")
    parser.add_argument("--no_rewrites", action="store_true",
                        help="Run the model as transformers builds it, without the exact speed-ups "
                             "(for debugging and comparing; fp32 and bf16).")


def add_output_dir_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--output_dir", type=Path, help=f"Folder for what the command writes (default: {default}).")


def default_output_dir(model_dir: Path, command: str) -> Path:
    """Evaluation outputs go beside the model folder, not into it: MODEL-outputs/COMMAND; for a
    model from the Hub's cache, models/NAME-outputs/COMMAND (the cache is not for our files)."""
    hub_id = in_hub_cache(model_dir)
    if hub_id:
        return Path("models") / f"{hub_id.split('/')[-1]}-outputs" / command
    return model_dir.with_name(f"{model_dir.name}-outputs") / command


def run_command(main) -> None:
    """Call main(argv) with `--debug` taken out of argv."""
    argv = sys.argv[1:]
    debug = "--debug" in argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        main([arg for arg in argv if arg != "--debug"])
    except UserError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
