"""A run's label set and Label Studio control names, read from the project's labeling config.

The labeling config (the XML of Label Studio's Settings > Labeling Interface) is the one source
of truth: its Choices control gives the label values and their order, the control's `name`
(`from_name` in exports and predictions), the Text object it annotates (`to_name`) and the task
field that object shows (`value="$text"` -> `data.text`). A trained model folder carries the
result in `label_schema.json`, beside a copy of the config, so every consumer takes its labels
from the model it loads. The bundled default is `data/label_config.xml`: the four war-news
event types, Choices `event` on Text `text`.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tagger.artifacts import write_text_atomic
from tagger.cli import UserError

SCHEMA_FILE = "label_schema.json"
CONFIG_FILE = "label_config.xml"

# Label Studio's choice="single" and "single-radio" allow one label per task; "multiple" several.
SINGLE_CHOICE = ("single", "single-radio")


class LabelConfigError(UserError, ValueError):
    """A labeling config that cannot give a run its labels; the message names the file."""


@dataclass(frozen=True)
class LabelSchema:
    # Order matters: it is the column order of every multi-hot vector and of the model's logits.
    labels: tuple[str, ...]
    from_name: str  # the Choices control
    to_name: str  # the Text object it annotates
    text_field: str  # the task data key that object shows
    choice: str = "multiple"

    @property
    def single_choice(self) -> bool:
        return self.choice in SINGLE_CHOICE

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    def multi_hot(self, labels) -> list[float]:
        """[0/1, ...] in label order; floats because BCE loss wants float targets."""
        chosen = set(labels)
        return [1.0 if label in chosen else 0.0 for label in self.labels]

    def names(self, row) -> list[str]:
        """The labels of a 0/1 row, in label order."""
        return [label for label, on in zip(self.labels, row) if on]


# The bundled default, as data/label_config.xml gives it (a test keeps the two equal): model
# folders written before label_schema.json existed were trained with it.
DEFAULT = LabelSchema(("withdrawal", "strike", "evacuation", "atrocity_claim"), "event", "text", "text")


def choices_controls(label_config: str, where: str) -> list[LabelSchema]:
    """Every Choices control of the config that classifies a whole Text (not per region)."""
    from label_studio_sdk.label_interface import LabelInterface  # only where a config is parsed

    try:
        interface = LabelInterface(label_config)
    except Exception as error:  # the SDK raises its own XML syntax errors
        raise LabelConfigError(f"{where}: not a valid labeling config ({str(error).splitlines()[0]})") from None
    found = []
    for control in interface.controls:
        if control.tag != "Choices" or control.attr.get("perRegion") == "true" or len(control.to_name or []) != 1:
            continue
        target = interface.get_object(control.to_name[0])
        if target is None or target.tag != "Text" or not str(target.value).startswith("$"):
            continue
        found.append(LabelSchema(tuple(control.labels), control.name, target.name, target.value[1:],
                                 control.attr.get("choice", "single")))
    return found


def from_label_config(label_config: str, where: str, control: str = "") -> LabelSchema:
    """The schema of the config's Choices control named `control`, or of its only one."""
    candidates = choices_controls(label_config, where)
    if control:
        chosen = [c for c in candidates if c.from_name == control]
        if not chosen:
            raise LabelConfigError(f"{where}: no Choices control {control!r} on a Text object "
                                   f"(found: {[c.from_name for c in candidates]})")
        candidates = chosen
    if not candidates:
        raise LabelConfigError(f"{where}: no Choices control on a Text object: nothing to train a tagger on")
    if len(candidates) > 1:
        raise LabelConfigError(f"{where}: several Choices controls {[c.from_name for c in candidates]}; "
                               "name the one to train with --choices_control")
    if len(set(candidates[0].labels)) != len(candidates[0].labels) or not candidates[0].labels:
        raise LabelConfigError(f"{where}: control {candidates[0].from_name!r} needs distinct choices, "
                               f"has {list(candidates[0].labels)}")
    return candidates[0]


def read_label_config(path, control: str = "") -> tuple[LabelSchema, str]:
    """(schema, the config's XML) of a labeling config file."""
    path = Path(path)
    if not path.is_file():
        raise LabelConfigError(f"{path}: labeling config not found (copy it from the project's Settings > "
                               "Labeling Interface > Code, or use the one `export` saves beside the export)")
    text = path.read_text(encoding="utf-8")
    return from_label_config(text, str(path), control), text


def save(model_dir: Path, schema: LabelSchema, label_config: str) -> None:
    """Write the schema and the config it came from into a model folder."""
    write_text_atomic(Path(model_dir) / SCHEMA_FILE, json.dumps(asdict(schema), indent=2) + "\n")
    write_text_atomic(Path(model_dir) / CONFIG_FILE, label_config)


def of_model(model_dir) -> LabelSchema:
    """The schema a model folder was trained with; folders from before label_schema.json have
    the bundled default's control names and the labels of their config.json."""
    model_dir = Path(model_dir)
    path = model_dir / SCHEMA_FILE
    if path.is_file():
        try:
            fields = json.loads(path.read_text())
            return LabelSchema(**{**fields, "labels": tuple(fields["labels"])})
        except (json.JSONDecodeError, TypeError, KeyError) as error:
            raise LabelConfigError(f"{path}: not a label schema ({error!r})") from None
    config = model_dir / "config.json"
    if not config.is_file():
        raise LabelConfigError(f"{model_dir}: no {SCHEMA_FILE} or config.json; not a model folder written by "
                               "`python -m train`")
    id2label = json.loads(config.read_text()).get("id2label") or {}
    labels = tuple(id2label[key] for key in sorted(id2label, key=int))
    return LabelSchema(labels, DEFAULT.from_name, DEFAULT.to_name, DEFAULT.text_field)
