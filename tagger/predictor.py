"""Loading a trained model folder and scoring sentences in batches."""

import json
import logging
from pathlib import Path

import numpy as np

from tagger.checked_int8 import MARGINS_FILE, read_margins
from tagger.cli import MODES, UserError
from tagger.hub import ModelFolderError, model_folder
from tagger import labels as label_schema
from tagger.metrics import sigmoid
from tagger.modes import auto_mode, has_gpu
from tagger.tokenizer import load_tokenizer

# torch and transformers load only for the PyTorch modes (and to export for the ONNX ones): the
# ONNX Runtime modes start seconds sooner without them (docs/performance.md).

log = logging.getLogger(__name__)
ONNX_MODES = ("onnx-fp32", "onnx-int8-checked", "onnx-int8")  # ONNX Runtime, on the CPU


# Sentences per batch: a GPU scores faster in larger batches, a CPU gains nothing past 64
# (measured: docs/performance.md).
BATCH_SIZE = {"cuda": 256, "cpu": 64}
# The few sentences that onnx-int8-checked scores again are of every length: in batches of 64 they
# were padded to the longest (27 of 13 to 73 tokens: 0.35 s), in batches of 8 much less (0.21 s).
RESCORE_BATCH_SIZE = 8


class Tagger:
    """Tags sentences with a model folder written by `python -m train`:

        tagger = Tagger.from_pretrained("models/news")
        tagger.tag(["Troops withdrew from Kherson."])
        # [{"text": ..., "labels": ["withdrawal"], "scores": {"withdrawal": 0.97, ...}}]

    Labels come from the per-class thresholds tuned in training (thresholds.json); `scores`
    alone gives the sigmoid scores as an array. Modes (tagger.cli.add_tagger_options explains
    each): auto (the default: the fastest whose labels match fp32's on this machine, logged),
    fp32 (PyTorch: the same scores as `transformers.pipeline`), bf16, onnx-fp32, onnx-int8-checked,
    onnx-int8. `rewrites=False` runs the model as transformers builds it, without the exact
    speed-ups (first token only in the last layer, attention over a multiple of 16 keys, fused
    GELU): for debugging and for comparing."""

    def __init__(self, model_dir, batch_size: int | None = None, max_length: int | None = None, mode: str = "auto",
                 rewrites: bool = True, onnx_dir: Path | None = None):
        if mode not in MODES:
            raise UserError(f"unknown mode {mode!r}; choose one of {MODES}")
        if mode in ONNX_MODES and not rewrites:
            raise UserError(f"{mode} exports the rewritten model; use fp32 or bf16 without rewrites")
        self.model_dir = model_folder(model_dir)  # a folder, or a Hub model id
        self.schema = label_schema.of_model(self.model_dir)  # the labels and Label Studio names it was trained with
        self.thresholds = read_thresholds(self.model_dir, self.schema.labels)
        check_weights(self.model_dir)  # before any mode reads them (the ONNX ones hash them first)
        self.mode = self.chosen_mode(mode)
        self.onnx_dir = onnx_dir  # where the ONNX exports are cached (default MODEL-outputs/onnx)
        self.tokenizer = load_tokenizer(self.model_dir)
        mode = self.mode
        on_gpu = mode not in ONNX_MODES and has_gpu()
        self.batch_size = batch_size or BATCH_SIZE["cuda" if on_gpu else "cpu"]
        self.max_length = max_length or min(self.tokenizer.model_max_length, 512)
        self.truncated = 0  # sentences cut to max_length tokens so far
        # onnx-int8-checked also has a CheckedInt8, which rescores in fp32 the sentences in doubt.
        self.checked = None
        if mode in ONNX_MODES:
            self.model = None  # PyTorch's copy is loaded only to export it, once
            self.forward, self.checked = onnx_forwards(self, mode)
        else:
            self.model = load_model(self.model_dir, self.schema.labels)
            self.forward = make_forward(self.model, mode, rewrites)

    def chosen_mode(self, mode: str) -> str:
        """The mode asked for; for auto, the one for this machine and model, logged with the reason."""
        if mode != "auto":
            return mode
        mode, why = auto_mode()
        if mode == "onnx-int8-checked" and self.int8_margins() is None:
            mode, why = "onnx-fp32", f"a CPU without bf16 units, and no int8 margins in {self.model_dir} " \
                                     "(measured when it is trained)"
        log.info("Mode auto: %s, for %s (--mode to choose another)", mode, why)
        return mode

    def int8_margins(self):
        """onnx-int8-checked's margins, measured on this model's weights when it was trained (or None)."""
        from tagger.onnx_runtime import weights_digest
        return read_margins(self.model_dir, len(self.schema.labels), weights_digest(self.model_dir))

    @classmethod
    def from_pretrained(cls, model_dir, mode: str = "auto", batch_size: int | None = None,
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

    def scores(self, texts: list[str]) -> np.ndarray:
        """Sigmoid score per sentence and label, rows in input order."""
        if not texts:
            return np.zeros((0, len(self.schema.labels)), dtype=np.float32)  # no batch to pad
        token_ids = self.tokenizer(texts, self.max_length)
        self.truncated += sum(len(ids) >= self.max_length for ids in token_ids)
        logits = self.logits(token_ids, self.forward)
        if self.checked:
            logits = self.checked.check(logits, lambda rows: self.logits([token_ids[i] for i in rows],
                                                                          self.checked.fp32, RESCORE_BATCH_SIZE))
        return sigmoid(logits)

    def logits(self, token_ids: list[list[int]], forward, batch_size: int | None = None) -> np.ndarray:
        """Sentences are batched by token count (not characters), so a batch's padding is small."""
        batch_size = batch_size or self.batch_size
        result = np.zeros((len(token_ids), len(self.schema.labels)), dtype=np.float32)
        order = np.argsort([len(ids) for ids in token_ids], kind="stable")
        for start in range(0, len(token_ids), batch_size):
            rows = order[start:start + batch_size]
            result[rows] = forward(self.padded([token_ids[i] for i in rows]))
        return result

    def padded(self, token_ids: list[list[int]]) -> dict[str, np.ndarray]:
        """A batch padded to its longest sentence (numpy: ten times faster than tokenizer.pad)."""
        lengths = np.array([len(ids) for ids in token_ids])
        input_ids = np.full((len(token_ids), lengths.max()), self.tokenizer.pad_token_id, dtype=np.int64)
        attention_mask = np.arange(lengths.max()) < lengths[:, None]
        if self.tokenizer.padding_side == "left":
            attention_mask = attention_mask[:, ::-1]
        input_ids[attention_mask] = np.concatenate(token_ids)
        return {"input_ids": input_ids, "attention_mask": attention_mask.astype(np.int64)}

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


def make_forward(model, mode: str, rewrites: bool = True):
    """A function from a tokenized batch to float32 logits (numpy), for fp32 or bf16 (PyTorch);
    the model is rewritten in place for speed unless `rewrites` is off."""
    import torch

    from tagger.first_token import last_layer_first_token_only
    from tagger.fused_gelu import fuse_linear_gelu
    from tagger.gpu import skip_cudnn_attention
    from tagger.padded_attention import pad_attention_to_multiples_of_16
    if rewrites:
        last_layer_first_token_only(model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        skip_cudnn_attention()  # every batch has a new shape
    # bf16 weights, not autocast: on a CPU, autocast re-casts every weight on every call.
    model = model.to(device, torch.bfloat16 if mode == "bf16" else torch.float32)
    if rewrites:
        fuse_linear_gelu(model)
        pad_attention_to_multiples_of_16(model)  # after the first-token swap, which checks for plain "sdpa"

    @torch.inference_mode()
    def forward(batch):
        batch = {key: torch.as_tensor(rows).to(device) for key, rows in batch.items()}
        return model(**batch).logits.float().cpu().numpy()
    return forward


def onnx_forwards(tagger: "Tagger", mode: str):
    """(forward function, CheckedInt8 or None) of an ONNX Runtime mode, its ONNX models exported on first use."""
    from tagger import onnx_runtime
    from tagger.checked_int8 import CheckedInt8

    def rewritten_model():
        from tagger.first_token import last_layer_first_token_only
        model = load_model(tagger.model_dir, tagger.schema.labels)
        last_layer_first_token_only(model)
        return model

    def session(scheme):
        sample = tagger.padded(tagger.tokenizer(onnx_runtime.EXPORT_SAMPLE, tagger.max_length))
        path = onnx_runtime.exported(tagger.model_dir, scheme, rewritten_model, sample, tagger.onnx_dir)
        return onnx_runtime.session_forward(path)
    if mode == "onnx-fp32":
        return session(onnx_runtime.FP32), None
    checked = None
    if mode == "onnx-int8-checked":
        margins = tagger.int8_margins()
        if margins is None:
            raise ModelFolderError(f"{tagger.model_dir}/{MARGINS_FILE}: missing or measured on other weights; "
                                   "train the model again, or use --mode onnx-fp32 or onnx-int8")
        checked = CheckedInt8(session(onnx_runtime.FP32), tagger.thresholds, margins, tagger.schema.single_choice)
    return session(onnx_runtime.INT8), checked


def measure_int8_margins(model_dir: Path, texts: list[str], measured_on: str, onnx_dir: Path | None = None) -> None:
    """Score texts (the model's own sentences) in int8 and in fp32 and store onnx-int8-checked's
    margins in the model folder (tagger/checked_int8.py)."""
    from tagger import onnx_runtime
    from tagger.checked_int8 import write_margins

    tagger = Tagger(model_dir, mode="onnx-int8", onnx_dir=onnx_dir)
    token_ids = tagger.tokenizer(texts, tagger.max_length)
    fp32 = Tagger(model_dir, mode="onnx-fp32", onnx_dir=onnx_dir).forward
    moves = np.abs(tagger.logits(token_ids, tagger.forward) - tagger.logits(token_ids, fp32))
    write_margins(model_dir, moves, onnx_runtime.weights_digest(Path(model_dir)), measured_on)


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


def check_weights(model_dir: Path) -> None:
    if not (model_dir / "model.safetensors").is_file():
        raise ModelFolderError(f"{model_dir}: no model.safetensors (only safetensors weights are loaded)")


def load_model(model_dir: Path, labels):
    from transformers import AutoModelForSequenceClassification

    check_weights(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if names != list(labels):
        raise ModelFolderError(f"{model_dir}/config.json: labels {names}, but {label_schema.SCHEMA_FILE} "
                               f"names {list(labels)}")
    return model.eval()
