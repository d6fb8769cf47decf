"""The ONNX Runtime path: the model exported to ONNX once, weights quantized to int8
(dynamic quantization), cached beside the model as onnx/model.int8.onnx."""

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

CACHED = Path("onnx") / "model.int8.onnx"


def int8_forward(model_dir: Path, model, tokenizer):
    """A function from a tokenized batch (PyTorch tensors) to logits, run by ONNX Runtime."""
    import onnxruntime

    path = model_dir / CACHED
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
        quantized = Path(work) / "model.int8.onnx"
        quantize_dynamic(str(fp32), str(quantized), weight_type=QuantType.QInt8)
        os.replace(quantized, path)  # whole file or none
