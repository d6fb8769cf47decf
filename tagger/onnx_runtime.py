"""The ONNX Runtime paths (CPU). The model is exported to ONNX once, with ONNX Runtime's
transformer fusions (attention, LayerNorm with its residual add, bias with GELU: the same
arithmetic in fewer passes over memory), and kept in two forms: fp32, which gives PyTorch's
scores to float rounding, and int8 weights (dynamic quantization, a scale per output channel).
Both are cached beside the model folder in MODEL-outputs/onnx/, so that the model folder holds
the model only, and named for the weights they were made from, so that a model trained again
into the same folder is exported again.
"""

import contextlib
import functools
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tagger.cli import default_output_dir

log = logging.getLogger(__name__)
FP32, INT8 = "fp32-fused", "int8-per-channel-fused"  # cache names: a new scheme gets a new name
EXPORT_SAMPLE = ["A short sentence.", "A somewhat longer sentence for the export."]  # traced padded


def weights_digest(model_dir: Path) -> str:
    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    return file_digest(str(weights.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def file_digest(path: str, size: int, mtime_ns: int) -> str:
    """Hashed once per process for each version of the file (its size and time are in the key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as weights:
        for block in iter(lambda: weights.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def cached_path(model_dir: Path, scheme: str, cache_dir: Path | None = None) -> Path:
    """In cache_dir (default MODEL-outputs/onnx). A cache written by an earlier scheme, or for an
    earlier model trained into the same folder, is never read."""
    cache_dir = cache_dir or default_output_dir(model_dir, "onnx")
    return Path(cache_dir) / f"model.{scheme}.{weights_digest(model_dir)}.onnx"


def exported(model_dir: Path, scheme: str, load_model, sample: dict, cache_dir: Path | None = None) -> Path:
    """The cached ONNX model of that scheme, built on first use (load_model() gives the PyTorch
    model, rewritten for inference; it is called only then, and traced on the sample batch)."""
    path = cached_path(model_dir, scheme, cache_dir)
    if not path.is_file():
        fp32 = cached_path(model_dir, FP32, cache_dir)
        with details_to_file(path.parent / "export.log"):
            if not fp32.is_file():
                export_fused_fp32(load_model(), sample, fp32)
            if scheme == INT8:
                quantize_int8(fp32, path)
    return path


@contextlib.contextmanager
def details_to_file(log_file: Path):
    """One line for the user while the model is exported; the exporter's and the fusions' log
    lines and warnings (torch's TracerWarnings, ONNX Runtime's 'Fused Gelu ...') go to log_file."""
    import time
    import warnings

    log.info("Building the fast CPU model once (an ONNX export of the model); details in %s", log_file)
    started = time.perf_counter()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    consoles = [(h, h.level) for h in root.handlers if not isinstance(h, logging.FileHandler)]
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for handler, _ in consoles:
        handler.setLevel(max(handler.level, logging.WARNING))
    root.addHandler(to_file)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for warning in caught:
            to_file.handle(logging.makeLogRecord({"levelname": "WARNING", "levelno": logging.WARNING,
                                                  "name": warning.category.__name__, "msg": str(warning.message)}))
    finally:
        root.removeHandler(to_file)
        to_file.close()
        for handler, level in consoles:
            handler.setLevel(level)
    log.info("Built the fast CPU model in %.0f s", time.perf_counter() - started)


def session_forward(path: Path):
    """A function from a tokenized batch (numpy arrays or CPU tensors) to logits, run by ONNX Runtime."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(batch) -> np.ndarray:
        feed = {name: np.asarray(batch[name]) for name in ("input_ids", "attention_mask")}
        return session.run(["logits"], feed)[0]
    return forward


def export_fused_fp32(model, sample: dict, path: Path) -> None:
    """Exported with eager attention: ONNX Runtime's attention fusion knows the graph that eager
    attention exports to (SDPA's is left unfused: 1.15x slower on MiniLM-L6, docs/performance.md)."""
    import torch
    from onnxruntime.transformers.optimizer import optimize_model

    model = model.float().eval()
    model.set_attn_implementation("eager")
    sample = {name: torch.as_tensor(sample[name]) for name in ("input_ids", "attention_mask")}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as work:
        plain = Path(work) / "model.onnx"
        torch.onnx.export(model, (sample["input_ids"], sample["attention_mask"]), str(plain),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
        fused = optimize_model(str(plain), model_type="bert", num_heads=model.config.num_attention_heads,
                               hidden_size=model.config.hidden_size)
        fused.save_model_to_file(str(Path(work) / path.name))
        os.replace(Path(work) / path.name, path)  # whole file or none


def quantize_int8(fp32: Path, path: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=path.parent) as work, quiet_root_logger():
        # The quantizer writes a shape-inferred copy beside its input and deletes it: from the shared
        # cache, two processes exporting at once delete each other's (the bench's workers did).
        source = Path(work) / fp32.name
        link_or_copy(fp32, source)
        quantized = Path(work) / path.name
        # One scale per output channel, not per matrix: as fast, and int8 labels differ from fp32's
        # on 62 instead of 336 of the corpus's 3,215 sentences with MPNet-base (20 instead of 28, MiniLM-L6).
        # The fused operators' outputs have no inferred type: they are fp32.
        quantize_dynamic(str(source), str(quantized), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
        os.replace(quantized, path)


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # the same folder's file system: no copy of the weights
    except OSError:
        shutil.copyfile(source, target)


@contextlib.contextmanager
def quiet_root_logger():
    """The quantizer logs two lines per tensor at INFO on the root logger, which the commands show,
    and a WARNING advising its pre-processing, which is shape inference and graph fusion: the
    fused export has had the fusions already, and the quantizer infers the shapes itself."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    root.addFilter(not_preprocessing_advice)
    try:
        yield
    finally:
        root.removeFilter(not_preprocessing_advice)
        root.setLevel(level)


def not_preprocessing_advice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Please consider to run pre-processing before quantization")
