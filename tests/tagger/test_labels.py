"""The label set and control names, read from a Label Studio labeling config."""

import json
import shutil

import pytest

from conftest import FIVE_LABEL_CONFIG, FIVE_LABELS, LABELS, REPO
from tagger.labels import DEFAULT, LabelConfigError, LabelSchema, from_label_config, of_model, read_label_config


def test_the_bundled_config_gives_the_bundled_default():
    schema, text = read_label_config(REPO / "data" / "label_config.xml")
    assert schema == DEFAULT and schema.labels == LABELS and text.startswith("<View>")


def test_a_users_config_gives_its_labels_in_order_and_its_names():
    schema = from_label_config(FIVE_LABEL_CONFIG, "mine.xml")
    assert schema == LabelSchema(FIVE_LABELS, "events", "sentence", "sentence", "multiple")
    assert schema.multi_hot(["ceasefire", "strike"]) == [0, 1, 0, 0, 1]
    assert schema.names([1, 0, 0, 0, 1]) == ["withdrawal", "ceasefire"]


def test_aliases_single_choice_and_per_region_controls():
    config = ('<View><Text name="t" value="$body"/>'
              '<Choices name="region" toName="t" perRegion="true"><Choice value="x"/></Choices>'
              '<Choices name="kind" toName="t"><Choice value="Strike" alias="strike"/><Choice value="other"/></Choices>'
              '</View>')
    schema = from_label_config(config, "c.xml")  # the per-region control is not a sentence tagger's
    assert schema.labels == ("strike", "other") and schema.from_name == "kind" and schema.text_field == "body"
    assert schema.single_choice  # Label Studio's default is choice="single"


@pytest.mark.parametrize("config, control, message", [
    ("<View><Text", "", "c.xml: not a valid labeling config"),
    ('<View><Image name="i" value="$img"/><Choices name="c" toName="i"><Choice value="a"/></Choices></View>', "",
     "c.xml: no Choices control on a Text object"),
    ('<View><Text name="t" value="$text"/><Choices name="a" toName="t"><Choice value="x"/></Choices>'
     '<Choices name="b" toName="t"><Choice value="y"/></Choices></View>', "",
     "several Choices controls ['a', 'b']; name the one to train with --choices_control"),
    (FIVE_LABEL_CONFIG, "event", "c.xml: no Choices control 'event' on a Text object (found: ['events'])"),
])
def test_a_config_that_cannot_give_labels_is_one_clear_error(config, control, message):
    with pytest.raises(LabelConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        from_label_config(config, "c.xml", control)


def test_several_controls_are_told_apart_by_name():
    config = ('<View><Text name="t" value="$text"/><Choices name="a" toName="t"><Choice value="x"/></Choices>'
              '<Choices name="b" toName="t" choice="multiple"><Choice value="y"/><Choice value="z"/></Choices></View>')
    assert from_label_config(config, "c.xml", "b").labels == ("y", "z")


def test_a_missing_config_file_says_where_to_find_one(tmp_path):
    with pytest.raises(LabelConfigError, match="labeling config not found .*Labeling Interface"):
        read_label_config(tmp_path / "none.xml")


def test_a_model_folder_carries_its_schema_and_older_folders_have_the_bundled_names(smoke_model, tmp_path):
    assert of_model(smoke_model) == DEFAULT
    assert (smoke_model / "label_config.xml").read_text() == (REPO / "data" / "label_config.xml").read_text()
    old = tmp_path / "old"
    shutil.copytree(smoke_model, old)
    (old / "label_schema.json").unlink()
    (old / "label_config.xml").unlink()
    assert of_model(old) == DEFAULT
    config = json.loads((old / "config.json").read_text())
    config["id2label"] = {"0": "b", "1": "a"}
    (old / "config.json").write_text(json.dumps(config))
    assert of_model(old).labels == ("b", "a")  # the labels of its own config.json, in their order


def test_a_folder_of_the_earlier_layout_tags_as_before(smoke_model, tmp_path):
    from tagger.predictor import Tagger
    old = tmp_path / "old"
    shutil.copytree(smoke_model, old)
    (old / "label_schema.json").unlink()
    (old / "label_config.xml").unlink()
    texts = ["A missile hit a fuel depot in Dnipro.", "Buses took residents out of Irpin."]
    assert Tagger(old, mode="fp32").tag(texts) == Tagger(smoke_model, mode="fp32").tag(texts)
