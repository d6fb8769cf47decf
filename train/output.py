"""The run's output folder, so that a crash at any moment loses nothing.

A run works in `NAME.partial/` (checkpoints, then the finished model in `model/`) and holds
`.NAME.lock` while it does, so a second run on the same output_dir refuses to start. The finished
model replaces `NAME` in renames under a marker file: a run killed half-way through them is
completed by the next run on the same output_dir, and an old model is never damaged, only moved
aside once its replacement is complete.
"""

import errno
import logging
import os
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from tagger.artifacts import write_text_atomic
from tagger.cli import UserError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not guarded there
    fcntl = None

log = logging.getLogger(__name__)

PUBLISHING = "PUBLISHING"  # in the staging folder: its model/ is complete and being moved into place


def staging_dir(output_dir: Path) -> Path:
    """Checkpoints and the model being saved live here until the run is complete."""
    return output_dir.with_name(output_dir.name + ".partial")


@contextmanager
def exclusive(output_dir: Path):
    """Hold `.NAME.lock` beside output_dir for the block: a second run on it stops with an error."""
    lock = output_dir.with_name(f".{output_dir.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+", encoding="utf-8") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                raise UserError(f"{output_dir}: another run is writing it ({handle.read().strip() or 'unknown'}); "
                                "wait for it to end or choose another --output_dir") from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        yield  # the lock goes with the file handle, also when the process is killed


def prepare(output_dir: Path, overwrite: bool, resume: bool) -> bool:
    """Check output_dir before a run; True when an interrupted run's publish was completed and
    nothing is left to train (with --resume)."""
    if finish_interrupted_publish(output_dir) and resume:
        return True
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise UserError(
            f"{output_dir} already holds a model; choose another --output_dir or pass "
            "--overwrite_output_dir true (the old model stays until the new one is complete)")
    staging = staging_dir(output_dir)
    if resume:
        if not staging.exists():
            log.warning("Nothing to resume in %s: training starts from the beginning", staging)
        return False
    if staging.exists():
        if not overwrite:
            raise UserError(
                f"{staging} holds an interrupted run: pass --resume true to continue it, "
                "or --overwrite_output_dir true to start over")
        remove(staging)
    return False


def publish(staging: Path, output_dir: Path) -> None:
    """Make staging/model (complete) output_dir, then drop the old model and the staging folder.
    Every step can be interrupted: finish_interrupted_publish() repeats the ones left."""
    marker = staging / PUBLISHING
    if not marker.exists():
        write_text_atomic(marker, "model/ is complete; it replaces the output folder\n")
    model, replaced = staging / "model", staging / "replaced"
    if model.exists():
        if output_dir.exists():
            if replaced.exists():
                shutil.rmtree(replaced)
            os.rename(output_dir, replaced)
        os.rename(model, output_dir)
    remove(staging)


def finish_interrupted_publish(output_dir: Path) -> bool:
    """Complete a publish that a killed run left half-done; True if there was one."""
    for trash in output_dir.parent.glob(f"{output_dir.name}.partial.trash-*"):
        shutil.rmtree(trash)
    staging = staging_dir(output_dir)
    if not (staging / PUBLISHING).exists():
        return False
    log.warning("Completing the interrupted publish of %s into %s", staging / "model", output_dir)
    publish(staging, output_dir)
    return True


# What the OS says when a write cannot go through. safetensors passes its message on; torch.save
# reports only that its zip writer lost its place, so that is matched too.
WRITE_FAILURES = {errno.ENOSPC: "No space left on device", errno.EFBIG: "File too large",
                  errno.EDQUOT: "Disk quota exceeded", errno.EROFS: "Read-only file system"}
TORCH_WRITE_FAILURES = ("PytorchStreamWriter failed", "inline_container.cc", "iostream error")


@contextmanager
def write_errors_reported(staging: Path, output_dir: Path):
    """A failed write in the block (a full disk) becomes one line: a half-written checkpoint or
    model is never used, so the last complete checkpoint and any model in output_dir stand."""
    try:
        yield
    except Exception as error:
        reason = write_failure(error, staging)
        if reason is None:
            raise
        raise UserError(f"{staging}: a write failed ({reason}); the last complete checkpoint and any model "
                        f"in {output_dir} are untouched: make room, then run again with --resume true") from None


def write_failure(error: Exception, folder: Path) -> str | None:
    chain = [e for e in (error, error.__cause__, error.__context__) if e is not None]
    text = " ".join(map(str, chain))
    for code, reason in WRITE_FAILURES.items():
        if any(getattr(e, "errno", None) == code for e in chain) or reason in text:
            return reason
    if any(marker in text for marker in TORCH_WRITE_FAILURES):
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        return f"torch.save could not write a file; {shutil.disk_usage(existing).free / 1e6:,.0f} MB free there"
    return None


def remove(folder: Path) -> None:
    """Rename, then delete: a kill during the deletion leaves a trash folder, never a staging
    folder with half its checkpoints."""
    trash = folder.with_name(f"{folder.name}.trash-{os.getpid()}-{time.monotonic_ns()}")
    os.rename(folder, trash)
    shutil.rmtree(trash)
