"""The ONNX Runtime path: the model exported to ONNX once, weights quantized to int8
(dynamic quantization, a scale per output channel), cached beside the model folder in
MODEL-outputs/onnx/, so that the model folder holds the model only."""

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from tagger.cli import default_output_dir


def cached_path(model_dir: Path) -> Path:
    """Named for its quantization scheme and for the weights it was made from: a cache written by
    an earlier scheme, or for an earlier model trained into the same folder, is never read."""
    digest = hashlib.sha256()
    with open(model_dir / "model.safetensors", "rb") as weights:
        for block in iter(lambda: weights.read(1 << 22), b""):
            digest.update(block)
    return default_output_dir(model_dir, "onnx") / f"model.int8-per-channel.{digest.hexdigest()[:16]}.onnx"


def int8_forward(model_dir: Path, model, tokenizer):
    """A function from a tokenized batch (PyTorch tensors) to logits, run by ONNX Runtime."""
    import onnxruntime

    path = cached_path(model_dir)
    if not path.is_file():
        export_int8(model, tokenizer, path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(batch) -> np.ndarray:
        feed = {"input_ids": batch["input_ids"].numpy(), "attention_mask": batch["attention_mask"].numpy()}
        return session.run(["logits"], feed)[0]
    return forward


def export_int8(model, tokenizer, path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path.parent.mkdir(parents=True, exist_ok=True)
    sample = tokenizer(["A short sentence.", "A somewhat longer sentence for the export."],
                       padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory(dir=path.parent) as work:
        fp32 = Path(work) / "model.onnx"
        torch.onnx.export(model.float().eval(), (sample["input_ids"], sample["attention_mask"]), str(fp32),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
        quantized = Path(work) / path.name
        # One scale per output channel, not per matrix: as fast, and int8 labels differ from fp32's
        # on 62 instead of 336 of the corpus's 3,215 sentences with MPNet-base (20 instead of 28, MiniLM-L6).
        quantize_dynamic(str(fp32), str(quantized), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(quantized, path)  # whole file or none
