"""--freeze_embeddings: the encoder's embedding layer stays as pretrained; the rest trains."""

import torch
from safetensors.torch import load_file
from transformers import set_seed

from conftest import REPO
from train.config import load_config
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
