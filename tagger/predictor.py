"""Loading a trained model folder and scoring sentences in batches."""

import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tagger.cli import MODES, UserError
from tagger.first_token import last_layer_first_token_only
from tagger.fused_gelu import fuse_linear_gelu
from tagger.gpu import skip_cudnn_attention
from tagger import labels as label_schema
from tagger.metrics import sigmoid
from tagger.padded_attention import pad_attention_to_multiples_of_16


class ModelFolderError(UserError):
    pass


# Sentences per batch: a GPU scores faster in larger batches, a CPU gains nothing past 64
# (measured: docs/performance.md).
BATCH_SIZE = {"cuda": 256, "cpu": 64}


class Tagger:
    """Tags sentences with a model folder written by `python -m train`:

        tagger = Tagger.from_pretrained("models/news")
        tagger.tag(["Troops withdrew from Kherson."])
        # [{"text": ..., "labels": ["withdrawal"], "scores": {"withdrawal": 0.97, ...}}]

    Labels come from the per-class thresholds tuned in training (thresholds.json); `scores`
    alone gives the sigmoid scores as an array. Modes: fp32 (PyTorch, the default: the same
    scores as `transformers.pipeline`), bf16 (PyTorch, bf16 weights: GPUs and CPUs with bf16
    instructions), onnx-int8 (ONNX Runtime with int8 weights, CPU; slightly less accurate).
    `rewrites=False` runs the model as transformers builds it, without the exact speed-ups
    (first token only in the last layer, attention over a multiple of 16 keys, fused GELU): for
    debugging and for comparing."""

    def __init__(self, model_dir, batch_size: int | None = None, max_length: int | None = None, mode: str = "fp32",
                 rewrites: bool = True):
        if mode not in MODES:
            raise UserError(f"unknown mode {mode!r}; choose one of {MODES}")
        if mode == "onnx-int8" and not rewrites:
            raise UserError("onnx-int8 exports the rewritten model; use fp32 or bf16 without rewrites")
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise ModelFolderError(f"{model_dir}: no such model folder")
        self.schema = label_schema.of_model(self.model_dir)  # the labels and Label Studio names it was trained with
        self.thresholds = read_thresholds(self.model_dir, self.schema.labels)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        on_gpu = torch.cuda.is_available() and mode != "onnx-int8"  # ONNX Runtime runs on the CPU here
        self.batch_size = batch_size or BATCH_SIZE["cuda" if on_gpu else "cpu"]
        self.max_length = max_length or min(self.tokenizer.model_max_length, 512)
        self.truncated = 0  # sentences cut to max_length tokens so far
        self.model = load_model(self.model_dir, self.schema.labels)
        self.forward = make_forward(self.model_dir, self.model, self.tokenizer, mode, rewrites)

    @classmethod
    def from_pretrained(cls, model_dir, mode: str = "fp32", batch_size: int | None = None,
                        rewrites: bool = True) -> "Tagger":
        return cls(model_dir, batch_size=batch_size, mode=mode, rewrites=rewrites)

    def tag(self, texts: str | list[str]) -> dict | list[dict]:
        """Labels (after the tuned thresholds) and scores per sentence, in input order; one
        dict for one string."""
        if isinstance(texts, str):
            return self.tag([texts])[0]
        scores = self.scores(texts)
        return [{"text": text, "labels": labels, "scores": dict(zip(self.schema.labels, map(float, row)))}
                for text, row, labels in zip(texts, scores, self.labels(scores))]

    @torch.inference_mode()
    def scores(self, texts: list[str]) -> np.ndarray:
        """Sigmoid score per sentence and label, rows in input order.

        Sentences are batched by token count (not characters), so a batch's padding is small."""
        result = np.zeros((len(texts), len(self.schema.labels)), dtype=np.float32)
        if not texts:
            return result  # the tokenizer fails on an empty list
        token_ids = self.tokenizer(texts, truncation=True, max_length=self.max_length,
                                   return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        lengths = np.array([len(ids) for ids in token_ids])
        self.truncated += int((lengths >= self.max_length).sum())
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            result[rows] = sigmoid(self.forward(self.padded([token_ids[i] for i in rows])))
        return result

    def padded(self, token_ids: list[list[int]]) -> dict[str, torch.Tensor]:
        """A batch padded to its longest sentence (numpy: ten times faster than tokenizer.pad)."""
        lengths = np.array([len(ids) for ids in token_ids])
        input_ids = np.full((len(token_ids), lengths.max()), self.tokenizer.pad_token_id, dtype=np.int64)
        attention_mask = np.arange(lengths.max()) < lengths[:, None]
        if self.tokenizer.padding_side == "left":
            attention_mask = attention_mask[:, ::-1]
        input_ids[attention_mask] = np.concatenate(token_ids)
        return {"input_ids": torch.from_numpy(input_ids),
                "attention_mask": torch.from_numpy(attention_mask.astype(np.int64))}

    def labels(self, scores: np.ndarray) -> list[list[str]]:
        return chosen_labels(scores, self.thresholds, self.schema.single_choice)


def chosen_labels(scores: np.ndarray, thresholds: dict[str, float], single_choice: bool = False) -> list[list[str]]:
    """Each row's labels (the thresholds' keys, in column order) over their thresholds; for a
    single-choice control (Label Studio's choice="single"), only the highest-scoring of them."""
    scores, names = np.asarray(scores), list(thresholds)
    over = scores >= np.array(list(thresholds.values()))
    if single_choice:
        best = np.where(over, scores, -np.inf).argmax(axis=1)
        over = over & (np.arange(len(names)) == best[:, None])
    return [[names[i] for i in np.flatnonzero(row)] for row in over]


def make_forward(model_dir: Path, model, tokenizer, mode: str, rewrites: bool = True):
    """A function from a tokenized batch to float32 logits (numpy), for the chosen mode; the
    model is rewritten in place for speed unless `rewrites` is off."""
    if rewrites:
        last_layer_first_token_only(model)
    if mode == "onnx-int8":
        from tagger.onnx_int8 import int8_forward
        return int8_forward(model_dir, model, tokenizer)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        skip_cudnn_attention()  # every batch has a new shape
    # bf16 weights, not autocast: on a CPU, autocast re-casts every weight on every call.
    model = model.to(device, torch.bfloat16 if mode == "bf16" else torch.float32)
    if rewrites:
        fuse_linear_gelu(model)
        pad_attention_to_multiples_of_16(model)  # after the first-token swap, which checks for plain "sdpa"

    def forward(batch):
        return model(**{key: tensor.to(device) for key, tensor in batch.items()}).logits.float().cpu().numpy()
    return forward


def read_thresholds(model_dir: Path, labels) -> dict[str, float]:
    path = model_dir / "thresholds.json"
    if not path.is_file():
        raise ModelFolderError(f"{path}: missing; this folder was not written by `python -m train`")
    return thresholds_file(path, labels)


def thresholds_file(path: Path, labels) -> dict[str, float]:
    """{label: threshold} in `labels` order, from a thresholds.json (a model folder's, or eval.crossval's)."""
    if not path.is_file():
        raise ModelFolderError(f"{path}: no such thresholds file")
    try:
        thresholds = json.loads(path.read_text())
        return {label: float(thresholds[label]) for label in labels}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ModelFolderError(f"{path}: expected a number for each of {list(labels)} ({error!r})") from None


def tagger_from(args, model_dir: Path | None = None) -> Tagger:
    """The Tagger that tagger.cli's add_model_option and add_tagger_options arguments ask for (of
    another model folder with the same options, given model_dir)."""
    return Tagger(model_dir or args.model, batch_size=args.batch_size, mode=args.mode, rewrites=not args.no_rewrites)


def load_model(model_dir: Path, labels):
    if not (model_dir / "model.safetensors").is_file():
        raise ModelFolderError(f"{model_dir}: no model.safetensors (only safetensors weights are loaded)")
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if names != list(labels):
        raise ModelFolderError(f"{model_dir}/config.json: labels {names}, but {label_schema.SCHEMA_FILE} "
                               f"names {list(labels)}")
    return model.eval()
