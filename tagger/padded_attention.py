"""Attention over a multiple of 16 keys (CPU).

PyTorch's CPU flash-attention kernel slows down steeply when the number of keys is not a multiple
of 16: a batch of 64 sentences x 12 heads takes 5.2 ms at 46 tokens and 2.4 ms at 48 (bf16, this
repository's development machine; times grow with the remainder and drop back at each multiple of
16; the number of queries does not matter). So the encoder's attention pads keys and values to the
next multiple of 16 and masks the extra keys. Same result (to float rounding: the kernel blocks the
sums differently); the matrix products outside attention still see the real tokens only.
"""

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "sdpa_multiple_of_16"
MULTIPLE = 16


def sdpa_on_a_multiple_of_16(module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA attention, keys and values (batch, heads, tokens, head size) padded to a
    multiple of 16 tokens. Encoders only: every query row of the mask is the same (which keys are real)."""
    length = key.shape[2]
    extra = -length % MULTIPLE
    if extra == 0:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if attention_mask is None:  # no padding in this batch
        attention_mask = torch.ones(1, 1, 1, length, dtype=torch.bool, device=query.device)
    if attention_mask.dtype != torch.bool:
        raise ValueError(f"{NAME} expects a boolean mask (SDPA's), got {attention_mask.dtype}")
    keys_mask = torch.zeros(*attention_mask.shape[:2], 1, length + extra, dtype=torch.bool, device=query.device)
    keys_mask[..., :length] = attention_mask[:, :, :1]
    return sdpa_attention_forward(module, query, padded(key, extra), padded(value, extra), keys_mask, **kwargs)


def padded(x: torch.Tensor, extra: int) -> torch.Tensor:
    """x with `extra` zero rows appended on the token axis (zeros in the new rows only; F.pad fills all)."""
    batch, heads, length, size = x.shape
    result = x.new_empty(batch, heads, length + extra, size)
    result[:, :, :length] = x
    result[:, :, length:] = 0  # masked keys still need finite values: 0 x NaN is NaN
    return result


AttentionInterface.register(NAME, sdpa_on_a_multiple_of_16)
AttentionMaskInterface.register(NAME, sdpa_mask)


def pad_attention_to_multiples_of_16(model: nn.Module) -> bool:
    """Switch an encoder classifier on a CPU from SDPA to SDPA on a multiple of 16 keys; False (and
    the model unchanged) for other attention implementations, decoders and GPUs."""
    if model.config._attn_implementation != "sdpa" or getattr(model.config, "is_decoder", False):
        return False
    if next(model.parameters()).device.type != "cpu":
        return False
    model.set_attn_implementation(NAME)
    return True
