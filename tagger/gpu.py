"""Process-wide GPU settings shared by training and inference."""

import torch


def skip_cudnn_attention() -> None:
    """Leave cuDNN out of PyTorch's attention kernels (process-wide; flash and memory-efficient
    remain). It is PyTorch's first choice for bf16 on recent GPUs, and it builds a plan for each
    new batch shape: with dynamic padding nearly every batch is new, and training and the
    predictor's first pass ran several times slower with it (measured: docs/performance.md)."""
    torch.backends.cuda.enable_cudnn_sdp(False)
