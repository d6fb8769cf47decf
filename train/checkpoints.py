"""Which checkpoint a resumed run continues from: the newest *complete* one.

The Trainer writes a checkpoint file by file into `checkpoint-N/` (weights, optimizer, scheduler,
RNG state, then trainer_state.json), so a run killed while saving leaves a folder that looks like a
checkpoint and is not one. The Trainer's own `resume_from_checkpoint=True` takes the newest folder
whatever it holds; here every file is checked first, and a folder that fails is never loaded.
"""

import json
import logging
import re
import shutil
import zipfile
from pathlib import Path

from safetensors import safe_open

log = logging.getLogger(__name__)

# torch.save writes zip archives with a CRC per member: testzip() reads them all back.
ZIPPED = ("optimizer.pt", "scheduler.pt")


def step(checkpoint: Path) -> int:
    match = re.fullmatch(r"checkpoint-(\d+)", checkpoint.name)
    return int(match.group(1)) if match else -1


def why_incomplete(checkpoint: Path) -> str | None:
    """None for a complete, readable checkpoint; else the first thing wrong with it."""
    for name in ("model.safetensors", *ZIPPED, "trainer_state.json"):
        if not (checkpoint / name).is_file():
            return f"no {name}"
    rng_states = sorted(checkpoint.glob("rng_state*.pth"))
    if not rng_states:
        return "no rng_state.pth"
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError) as error:
        return f"trainer_state.json unreadable ({error})"
    try:
        with safe_open(checkpoint / "model.safetensors", framework="pt") as weights:
            for name in weights.keys():
                weights.get_slice(name)
    except Exception as error:  # safetensors raises its own error type for a truncated file
        return f"model.safetensors unreadable ({error})"
    for path in (*(checkpoint / name for name in ZIPPED), *rng_states):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (OSError, zipfile.BadZipFile) as error:
            return f"{path.name} unreadable ({error})"
        if bad is not None:
            return f"{path.name} corrupt ({bad})"
    return None


def resume_point(checkpoints: Path, delete_incomplete: bool) -> Path | None:
    """The newest complete checkpoint in `checkpoints`, saying which and why newer ones were
    skipped; None (training starts from the beginning, saying so) when there is none. Skipped
    folders are deleted when asked (by the main process), so the Trainer does not save into them."""
    found = sorted(checkpoints.glob("checkpoint-*"), key=step, reverse=True) if checkpoints.is_dir() else []
    skipped = []
    for checkpoint in found:
        reason = why_incomplete(checkpoint)
        if reason is None:
            log.info("Resuming from %s%s", checkpoint,
                     f"; skipped newer incomplete {'; '.join(skipped)}" if skipped else "")
            break
        skipped.append(f"{checkpoint.name} ({reason})")
    else:
        checkpoint = None
        log.warning("No complete checkpoint in %s%s: training starts from the beginning", checkpoints,
                    f" (skipped {'; '.join(skipped)})" if skipped else "")
    if delete_incomplete:
        for folder in found[:len(skipped)]:
            shutil.rmtree(folder)
    return checkpoint


def training_stopped(checkpoint: Path) -> bool:
    """Whether the run had already finished training when it saved this checkpoint (early
    stopping, or its last step): resuming must then not train any further."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    control = state.get("stateful_callbacks", {}).get("TrainerControl", {}).get("args", {})
    return bool(control.get("should_training_stop")) or state["global_step"] >= state.get("max_steps", float("inf"))
