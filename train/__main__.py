"""python -m train --config configs/NAME.yaml [--option value ...] [--debug]"""

from tagger.cli import run_command
from train.config import load_config
from train.run import run

if __name__ == "__main__":
    run_command(lambda argv: run(load_config(argv)))
