"""Fault injection for the reliability tests: Python imports this file at start-up when its
folder is on PYTHONPATH, and a real `python -m train` run then changes as the environment asks:

- KILL_AT=module:attribute (a function, or Class.method): the process kills itself with SIGKILL
  when that function is called for the KILL_AT_CALL-th time (default 1), before the call runs;
- LOSSES=FILE: each logged training loss is appended to FILE as "step loss"."""

import functools
import importlib
import os
import signal


def kill_at(target: str, wanted: int) -> None:
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original, calls = getattr(owner, name), [0]

    @functools.wraps(original)
    def killing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == wanted:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, killing)


def record_losses(path: str) -> None:
    import transformers
    log = transformers.Trainer.log

    def logged(self, logs, *args, **kwargs):
        if "loss" in logs:
            with open(path, "a") as losses:
                losses.write(f"{self.state.global_step} {logs['loss']}\n")
        return log(self, logs, *args, **kwargs)
    transformers.Trainer.log = logged


if os.environ.get("KILL_AT"):
    kill_at(os.environ["KILL_AT"], int(os.environ.get("KILL_AT_CALL", "1")))
if os.environ.get("LOSSES"):
    record_losses(os.environ["LOSSES"])
