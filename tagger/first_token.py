"""The last layer for the first token only.

BERT's and DistilBERT's sequence classifiers read one row of the last layer's output: the first
token's ([CLS]). So the predictor runs that layer for the first token only: keys and values still
come from every token, but the query, the attention output and the feed-forward block work on one
row instead of all of them. The logits are the same (to float rounding); a 6-layer model does
about a sixth less work. Inference only: nothing here applies dropout.
"""

import torch.nn.functional as F
from torch import nn
from transformers import BertForSequenceClassification, DistilBertForSequenceClassification


class FirstTokenLayer(nn.Module):
    """Stands in for the last encoder layer and returns (batch, 1, hidden)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, hidden_states, attention_mask=None, *args, **kwargs):
        first = hidden_states[:, :1]
        query, key, value, heads, scaling = self.attention_parts()

        def split(x):  # (batch, tokens, hidden) -> (batch, heads, tokens, hidden / heads)
            return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)
        # The encoder's 4-D mask (boolean or additive, batch x 1 x tokens x tokens): the first row.
        mask = None if attention_mask is None else attention_mask[:, :, :1]
        context = F.scaled_dot_product_attention(split(query(first)), split(key(hidden_states)),
                                                 split(value(hidden_states)), attn_mask=mask, scale=scaling)
        attended = self.after_attention(context.transpose(1, 2).reshape(first.shape), first)
        return self.feed_forward(attended)


class BertFirstTokenLayer(FirstTokenLayer):
    def attention_parts(self):
        attention = self.layer.attention.self
        return attention.query, attention.key, attention.value, attention.num_attention_heads, attention.scaling

    def after_attention(self, context, residual):
        return self.layer.attention.output(context, residual)  # dense, then LayerNorm(x + residual)

    def feed_forward(self, x):
        return self.layer.output(self.layer.intermediate(x), x)


class DistilBertFirstTokenLayer(FirstTokenLayer):
    def attention_parts(self):
        attention = self.layer.attention
        return attention.q_lin, attention.k_lin, attention.v_lin, attention.n_heads, attention.scaling

    def after_attention(self, context, residual):
        return self.layer.sa_layer_norm(self.layer.attention.out_lin(context) + residual)

    def feed_forward(self, x):
        return self.layer.output_layer_norm(self.layer.ffn(x) + x)


def last_layer_first_token_only(model: nn.Module) -> bool:
    """Swap in the first-token last layer where the architecture is known; False (and the model
    unchanged) for others, and for attention kernels whose masks are not 4-D (flash attention)."""
    if isinstance(model, BertForSequenceClassification):
        layers, wrapper = model.bert.encoder.layer, BertFirstTokenLayer
    elif isinstance(model, DistilBertForSequenceClassification):
        layers, wrapper = model.distilbert.transformer.layer, DistilBertFirstTokenLayer
    else:
        return False
    if model.config._attn_implementation not in ("sdpa", "eager"):
        return False
    layers[-1] = wrapper(layers[-1])
    return True
