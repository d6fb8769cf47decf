"""A linear probe as the classification head's starting point (LP-FT: Kumar et al., 2022,
"Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution").

A new head starts random, and the first steps of fine-tuning push its errors back into the
encoder; with a few hundred sentences there are few steps to recover. Fitting the head first, as
a class-weighted logistic regression on the frozen encoder's features (scikit-learn), starts
fine-tuning from a model that already tags about as well as the probe.
"""

import logging

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

log = logging.getLogger(__name__)


def init_head_from_probe(model, tokenizer, texts: list[str], labels, max_length: int, batch_size: int = 64) -> None:
    """Set the output layer (one logit per label) to a logistic regression per label fitted on
    the features that layer reads, with the encoder as loaded."""
    head = output_layer(model)
    features = head_inputs(model, head, tokenizer, texts, max_length, batch_size)
    labels = np.asarray(labels)
    with torch.no_grad():
        for column in range(labels.shape[1]):
            if len(set(labels[:, column])) < 2:
                continue  # a label on every sentence or none: nothing to fit, the head stays as it is
            probe = LogisticRegression(class_weight="balanced", C=1.0, max_iter=2000)
            probe.fit(features, labels[:, column])
            head.weight[column] = torch.as_tensor(probe.coef_[0], dtype=head.weight.dtype)
            head.bias[column] = float(probe.intercept_[0])
    log.info("Classification head started from a linear probe on %d sentences", len(texts))


def output_layer(model) -> nn.Linear:
    """The last Linear layer with one output per label (BERT's `classifier`, DistilBERT's
    `classifier`, MPNet's `classifier.out_proj`)."""
    outputs = model.config.num_labels
    layers = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == outputs]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Linear layer with {outputs} outputs to start from a probe")
    return layers[-1]


def head_inputs(model, head: nn.Linear, tokenizer, texts, max_length: int, batch_size: int) -> np.ndarray:
    """What the output layer reads for each sentence, in eval mode (no dropout)."""
    captured = []
    hook = head.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach().float()))
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                  max_length=max_length, return_tensors="pt").to(device)
                model(**batch)
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(captured).cpu().numpy()
