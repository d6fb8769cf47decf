"""Which mode `auto` means on this machine: the fastest whose labels match fp32's (on the bundled
corpus, for at least 99.9% of sentences: docs/performance.md). Asked without importing torch
where that can be helped (a CPU build of torch, a Linux CPU): it takes seconds to load."""

import functools
import importlib.metadata
import sys
from pathlib import Path


@functools.cache
def has_gpu() -> bool:
    if "torch" not in sys.modules and cpu_build_of_torch():
        return False
    import torch
    return torch.cuda.is_available()


def cpu_build_of_torch() -> bool:
    try:
        return importlib.metadata.version("torch").endswith("+cpu")
    except importlib.metadata.PackageNotFoundError:
        return False


@functools.cache
def has_bf16_units() -> bool:
    """AVX512-BF16 or AMX: without them PyTorch emulates bf16, hundreds of times slower."""
    cpuinfo = Path("/proc/cpuinfo")
    if "torch" not in sys.modules and cpuinfo.is_file():
        flags = set(cpuinfo.read_text().split())
        return bool(flags & {"avx512_bf16", "amx_bf16"})
    import torch
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()  # private, but PyTorch's own probes


def auto_mode() -> tuple[str, str]:
    """(mode, why)."""
    if has_gpu():
        return "fp32", "a GPU (bf16 is faster there, but its labels are not yet checked against fp32's)"
    if has_bf16_units():
        return "bf16", "a CPU with bf16 units"
    return "onnx-int8-checked", "a CPU without bf16 units: int8, with fp32 wherever a label is in doubt"
