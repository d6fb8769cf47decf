"""Publishing a finished model folder to the Hugging Face Hub (`--push_to_hub true`)."""

import logging
from pathlib import Path

from tagger.cli import UserError
from train.model import first_line

log = logging.getLogger(__name__)


def push(model_dir: Path, repo_id: str) -> None:
    """Upload the whole folder: weights, config with the label names, tokenizer, thresholds.json,
    metrics, run information and the model card. The local folder is complete before this runs,
    so a failure here loses nothing."""
    from huggingface_hub import HfApi
    try:
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=model_dir, commit_message=f"Upload {model_dir.name}")
    except Exception as error:  # network, authentication, offline mode: all the same to the user
        raise UserError(f"{model_dir} is saved, but pushing it to the Hub as {repo_id} failed ({first_line(error)}); "
                        f"push it later with `hf upload {repo_id} {model_dir}`") from None
    log.info("Pushed %s to the Hub: %s", model_dir, commit.commit_url)
