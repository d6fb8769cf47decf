"""The feed-forward block's first matrix product and its GELU in one oneDNN call (CPU).

In bf16 on a CPU with matrix units, the GELU after the 4x-wide product costs about half as much as
the product, because it reads and writes the whole activation again; oneDNN applies it to each tile
of the product while the tile is still in cache. Same function (the exact GELU, not the tanh
approximation). Inference only: the fused op has no gradient.
"""

import torch
from torch import nn
from transformers.activations import GELUActivation
from transformers.models.bert.modeling_bert import BertIntermediate
from transformers.models.distilbert.modeling_distilbert import FFN

# Feed-forward blocks whose activation follows a product: (class, product's name, activation's name).
BLOCKS = ((BertIntermediate, "dense", "intermediate_act_fn"), (FFN, "lin1", "activation"))


class LinearGelu(nn.Module):
    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias

    def forward(self, x):
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "gelu", [], "none")


def fuse_linear_gelu(model: nn.Module) -> int:
    """Fuse the exact GELU into the product before it in every BERT or DistilBERT feed-forward
    block of a model on a CPU with oneDNN; returns how many blocks were fused (0: model unchanged)."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return 0
    weights = next(model.parameters())
    if weights.device.type != "cpu":
        return 0
    if weights.dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return 0  # a CPU without bf16 instructions: oneDNN has no bf16 kernel to fuse into
    fused = 0
    for module in model.modules():
        for block, product, activation in BLOCKS:
            if isinstance(module, block) and type(getattr(module, activation)) is GELUActivation:
                setattr(module, product, LinearGelu(getattr(module, product)))
                setattr(module, activation, nn.Identity())
                fused += 1
    return fused
