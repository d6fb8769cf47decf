"""The model folder's files: written atomically (a reader sees the old file or the new one,
never half of one), the options it was trained with, and its model card."""

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import yaml

from tagger.cli import UserError


def trained_options(model_dir: Path) -> dict:
    """The options the run in model_dir was trained with (its train_config.yaml)."""
    path = Path(model_dir) / "train_config.yaml"
    if not path.is_file():
        raise UserError(f"{path}: missing; {model_dir} is not a model folder written by `python -m train`")
    return yaml.safe_load(path.read_text())


@contextmanager
def atomic_file(path: Path, mode: str = "w"):
    """Write through a temporary file beside `path`, moved into place only when the block
    ends without error: readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(mode, dir=path.parent, prefix=f".{path.name}.", delete=False,
                                         **({} if "b" in mode else {"encoding": "utf-8"}))
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o666 & ~current_umask())
        os.replace(handle.name, path)
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_file(path) as handle:
        handle.write(text)


def write_json(path: Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def thresholds_from(run_info: dict) -> str:
    given = run_info.get("thresholds_file")
    return f"from `{Path(given).name}`, given to the run" if given else "tuned on validation"


def weights_note(run_info: dict) -> str:
    digest = run_info.get("base_model_sha256")
    return f" (model.safetensors sha256 `{digest}`)" if digest else ""


def model_card(run_info: dict, metrics: dict, thresholds: dict[str, float]) -> str:
    test = metrics["splits"]["test"]["systems"]["model"]
    labels = list(thresholds)
    rows = "\n".join(
        f"| {label} | {test['per_class'][label]['precision']:.3f} | {test['per_class'][label]['recall']:.3f} "
        f"| {test['per_class'][label]['f1']:.3f} | {test['per_class'][label]['support']} | {thresholds[label]:.3f} |"
        for label in labels)
    sizes = ", ".join(f"{name} {n}" for name, n in run_info["split_sizes"].items())
    return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [multi-label, event-tagging, news]
---
# War-news event tagger

Tags each English news sentence with the event types it reports: {", ".join(f"`{l}`" for l in labels)}
(multi-label: several or none). Fine-tuned from `{run_info["base_model"]}`{weights_note(run_info)}.

## Use
```python
from transformers import pipeline
tagger = pipeline("text-classification", model="PATH_TO_THIS_FOLDER", top_k=None)
tagger("Russian forces withdrew from the city after heavy shelling.")
```
The pipeline gives a sigmoid score per label. Turn scores into labels with the per-class
thresholds in `thresholds.json` ({thresholds_from(run_info)}): with this repository installed,
`Tagger.from_pretrained("PATH_TO_THIS_FOLDER").tag(sentences)` (`from tagger import Tagger`) or
`python -m eval.predict` do both.

## Data
Label Studio exports: {", ".join(f"`{Path(f).name}`" for f in run_info["data_files"])};
splits grouped by article: {sizes}. Data fingerprint `{run_info["data_fingerprint"][:16]}`.

## Test metrics (held-out articles, thresholds {thresholds_from(run_info)})
| label | precision | recall | F1 | support | threshold |
|---|---|---|---|---|---|
{rows}

Macro-F1 {test["macro"]["f1"]:.3f}, micro-F1 {test["micro"]["f1"]:.3f}.
The test split is small: treat differences of a few points as noise.

## Intended use and limits
It tags claims reported in news, not verified facts: an `atrocity_claim` tag means a sentence
reports an allegation, not that the event happened. Trained on English articles about the 2022
Russia-Ukraine war; expect lower quality on other conflicts, outlets, languages and genres.
Use it to sort and search reporting, with people checking what matters, not to decide about people.
"""
