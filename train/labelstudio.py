"""`python -m train.labelstudio ...`: the earlier name of `python -m labelstudio ...`, kept for
scripts that call it. The Label Studio integration lives in labelstudio/."""

from labelstudio.__main__ import main
from tagger.cli import run_command

if __name__ == "__main__":
    run_command(main)
