"""`python -m train.prepare`, the earlier name of `python -m tagger.prepare` (articles into
sentences lives with the Tagger, which tags articles too), kept for scripts."""

from tagger.cli import run_command
from tagger.prepare import article_tasks, main, prepare, read_text_article, split_sentences  # noqa: F401

if __name__ == "__main__":
    run_command(main)
