"""The label set, defined once for the whole repository."""

# Order matters: it is the column order of every multi-hot vector and of the model's logits.
LABELS = ("withdrawal", "strike", "evacuation", "atrocity_claim")

ID2LABEL = dict(enumerate(LABELS))
LABEL2ID = {label: i for i, label in ID2LABEL.items()}

# Names of the controls in data/label_config.xml: the Choices control that carries the
# labels and the Text object it annotates. Exports are read by these names.
CHOICES_CONTROL = "event"
TEXT_FIELD = "text"


def multi_hot(labels) -> list[float]:
    """[0/1, ...] in LABELS order; floats because BCE loss wants float targets."""
    chosen = set(labels)
    return [1.0 if label in chosen else 0.0 for label in LABELS]
