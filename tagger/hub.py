"""Model folders on the Hugging Face Hub: a model id ('org/name') stands for the folder that
`python -m train --push_to_hub` uploaded, resolved to its files in the Hugging Face cache."""

import os
import urllib.request
from pathlib import Path

from tagger.errors import UserError


class ModelFolderError(UserError):
    pass


def model_folder(name_or_path) -> Path:
    """A local model folder as it is; anything else as a Hub model id, downloaded once into the
    Hugging Face cache (HF_HUB_CACHE), or taken from the cache alone where the Hub does not answer
    (HF_HUB_OFFLINE=1, or no network)."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download
    try:
        return Path(snapshot_download(str(name_or_path), local_files_only=not hub_reachable()))
    except (OSError, ValueError) as error:  # not an id, not on the Hub, not in the cache offline
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFolderError(f"{name_or_path}: no such model folder, nor a model on the Hugging Face Hub or in its "
                               f"cache ({reason})") from None


def in_hub_cache(model_dir: Path) -> str | None:
    """The model id of a folder that is a snapshot in the Hugging Face cache
    (.../models--org--name/snapshots/REVISION), else None."""
    repo = Path(model_dir).resolve().parent.parent
    if Path(model_dir).resolve().parent.name != "snapshots" or not repo.name.startswith("models--"):
        return None
    return repo.name[len("models--"):].replace("--", "/")


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        urllib.request.urlopen(endpoint, timeout=timeout).close()
        return True
    except Exception:  # any network failure means "not reachable"; the cache may still serve
        return False
