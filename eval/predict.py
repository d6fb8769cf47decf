"""`python -m eval.predict`, the earlier name of `python -m tagger.predict` (tagging files lives
with the Tagger), kept for scripts."""

from tagger.cli import run_command
from tagger.predict import main

if __name__ == "__main__":
    run_command(main)
