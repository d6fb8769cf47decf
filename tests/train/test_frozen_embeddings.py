"""--freeze_embeddings and --frozen_layers: what they name stays as pretrained; the rest trains."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import set_seed

from conftest import REPO
from train.config import ConfigError, load_config
from train.model import SCRATCH_TINY, load_base_model
from train.run import run


def test_frozen_embeddings_stay_as_they_were_and_the_rest_trains(tmp_path):
    config = load_config(["--config", str(REPO / "configs/smoke.yaml"), "--freeze_embeddings", "true",
                          "--num_train_epochs", "1", "--output_dir", str(tmp_path / "model")])
    trained = load_file(run(config) / "model.safetensors")
    set_seed(config.seed)  # as the run did before building its tiny model
    base = load_base_model(SCRATCH_TINY, False, ("withdrawal", "strike", "evacuation", "atrocity_claim")).model
    before = base.state_dict()
    embeddings = [name for name in trained if ".embeddings." in name]
    assert embeddings and all(torch.equal(trained[name], before[name]) for name in embeddings)
    assert not torch.equal(trained["distilbert.transformer.layer.0.ffn.lin1.weight"],
                           before["distilbert.transformer.layer.0.ffn.lin1.weight"])


def test_frozen_layers_stay_as_they_were_and_the_layers_above_train(tmp_path):
    config = load_config(["--config", str(REPO / "configs/smoke.yaml"), "--frozen_layers", "1",
                          "--num_train_epochs", "1", "--output_dir", str(tmp_path / "model")])
    trained = load_file(run(config) / "model.safetensors")
    set_seed(config.seed)
    before = load_base_model(SCRATCH_TINY, False, ("withdrawal", "strike", "evacuation", "atrocity_claim")).model.state_dict()
    frozen = [name for name in trained if ".embeddings." in name or ".layer.0." in name]
    above = [name for name in trained if ".layer.1." in name and name.endswith(".weight")]
    assert frozen and all(torch.equal(trained[name], before[name]) for name in frozen)
    assert above and all(not torch.equal(trained[name], before[name]) for name in above)


def test_more_frozen_layers_than_the_encoder_has_is_one_line_and_nothing_written(tmp_path):
    config = load_config(["--config", str(REPO / "configs/smoke.yaml"), "--frozen_layers", "3",
                          "--output_dir", str(tmp_path / "model")])
    with pytest.raises(ConfigError, match="frozen_layers 3: DistilBertForSequenceClassification has 2 transformer layers"):
        run(config)
    assert not (tmp_path / "model").exists()
