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


# The corpus this repository bundles: a model trained on these alone is the war-news tagger.
BUNDLED_EXPORTS = {"seed_export.json", "news_batch1_export.json", "news_batch2_export.json"}
# Below this many training sentences, pre-annotations cost more corrections than they saved on the
# bundled corpus: docs/results.md#pre-annotations-from-the-first-annotations-2026-12-07.
FEW_FOR_PRE_ANNOTATIONS = 50


def thresholds_from(run_info: dict) -> str:
    given, fixed = run_info.get("thresholds_file"), run_info.get("fixed_threshold")
    if given:
        return f"from `{Path(given).name}`, given to the run"
    if not fixed:
        return "tuned on validation"
    fewer, share = run_info.get("threshold_positives"), run_info.get("threshold_share")
    lower = [f"in proportion for a label with fewer than {fewer} training positives"] if fewer else []
    lower += [f"by the square of the shortfall for a label on less than {share:.0%} of the training sentences "
              f"(not below {run_info['lowest_share_threshold']:g})"] if share else []
    return f"{fixed:g}, lower " + "; lower ".join(lower) if lower else f"{fixed:g} for every label"


def weights_note(run_info: dict) -> str:
    digest = run_info.get("base_model_sha256")
    return f" (model.safetensors sha256 `{digest}`)" if digest else ""


def model_card(run_info: dict, metrics: dict, thresholds: dict[str, float], schema) -> str:
    """The folder's README.md, from the run: its labels and Label Studio names, data, recipe,
    test metrics and limits. The war-news description only for a model of the bundled corpus."""
    labels = list(thresholds)
    bundled = {Path(f).name for f in run_info["data_files"]} <= BUNDLED_EXPORTS
    sizes = ", ".join(f"{name} {n}" for name, n in run_info["split_sizes"].items())
    sentences = run_info["split_sizes"]["train"]
    title = "War-news event tagger" if bundled else "Sentence tagger: " + ", ".join(labels)
    what = ("Tags each English news sentence with the event types it reports" if bundled else
            f"Tags each sentence (Label Studio: Choices `{schema.from_name}` on Text `{schema.to_name}`) with")
    return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [multi-label, label-studio{", event-tagging, news" if bundled else ""}]
---
# {title}

{what}: {", ".join(f"`{l}`" for l in labels)}
({"multi-label: several or none" if schema.choice == "multiple" else "one label per sentence"}).
Fine-tuned from `{run_info["base_model"]}`{weights_note(run_info)} with the `{run_info.get("recipe", "finetune")}`
recipe of `python -m train`.

## Use
```python
from transformers import pipeline
tagger = pipeline("text-classification", model="PATH_TO_THIS_FOLDER", top_k=None)
tagger("{"Russian forces withdrew from the city after heavy shelling." if bundled else "A sentence to tag."}")
```
The pipeline gives a sigmoid score per label. Turn scores into labels with the per-class
thresholds in `thresholds.json` ({thresholds_from(run_info)}): with this repository installed,
`Tagger.from_pretrained("PATH_TO_THIS_FOLDER").tag(sentences)` (`from tagger import Tagger`) or
`python -m eval.predict` do both.

## Data
Label Studio exports: {", ".join(f"`{Path(f).name}`" for f in run_info["data_files"])};
splits grouped by article: {sizes}. Data fingerprint `{run_info["data_fingerprint"][:16]}`.

{test_section(metrics, thresholds, run_info)}
## Intended use and limits
{bundled_limits() if bundled else other_limits(sentences)}
Use it to sort and search text, with people checking what matters, not to decide about people.
"""


def test_section(metrics: dict, thresholds: dict[str, float], run_info: dict) -> str:
    if "test" not in metrics["splits"]:
        return ("## Test metrics\nNone: the project was too small to hold out test articles, so every sentence "
                "trained. `python -m eval.crossval` with the same options estimates its quality.\n")
    test = metrics["splits"]["test"]["systems"]["model"]
    rows = "\n".join(
        f"| {label} | {test['per_class'][label]['precision']:.3f} | {test['per_class'][label]['recall']:.3f} "
        f"| {test['per_class'][label]['f1']:.3f} | {test['per_class'][label]['support']} | {thresholds[label]:.3f} |"
        for label in thresholds)
    return f"""## Test metrics (held-out articles, thresholds {thresholds_from(run_info)})
| label | precision | recall | F1 | support | threshold |
|---|---|---|---|---|---|
{rows}

Macro-F1 {test["macro"]["f1"]:.3f}, micro-F1 {test["micro"]["f1"]:.3f} on {metrics["splits"]["test"]["sentences"]} sentences.
A test split of a few hundred sentences moves by several points between draws: treat small differences as noise.
"""


def bundled_limits() -> str:
    return """It tags claims reported in news, not verified facts: an `atrocity_claim` tag means a sentence
reports an allegation, not that the event happened. Trained on English articles about the 2022
Russia-Ukraine war; expect lower quality on other conflicts, outlets, languages and genres."""


def other_limits(sentences: int) -> str:
    limits = f"""Trained on {sentences} annotated sentences: it knows what they show, and expects text like them.
Expect lower quality on other sources, topics, languages and genres, and on labels with few examples."""
    if sentences < FEW_FOR_PRE_ANNOTATIONS:
        limits += f"""
With fewer than {FEW_FOR_PRE_ANNOTATIONS} annotated sentences, expect its pre-annotations to need more
corrections than empty ones: on the news corpus this training code comes with, at 10 and 25
annotated sentences they did (1.4 and 0.5 labels to add or remove per sentence, against 0.38 for
none); from 100 on they saved some."""
    return limits
