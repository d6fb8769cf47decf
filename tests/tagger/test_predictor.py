"""The Tagger: its faster modes agree with fp32, and its exact rewrites change no score."""

import logging
import shutil

import numpy as np
import pytest

from tagger.predictor import Tagger

TEXTS = ["Russian troops withdrew from Kherson.", "A missile hit a depot.", "Buses left Mariupol with children.",
         "Investigators found mass graves near the town after the occupiers left in a hurry last spring."]


@pytest.mark.parametrize("mode, tolerance", [("bf16", 0.02), ("onnx-fp32", 1e-5), ("onnx-int8", 0.05)])
def test_fast_modes_score_like_fp32(smoke_model, mode, tolerance):
    reference = Tagger(smoke_model, mode="fp32").scores(TEXTS)
    fast = Tagger(smoke_model, mode=mode).scores(TEXTS)
    assert fast.shape == reference.shape and np.abs(fast - reference).max() < tolerance


def test_the_rewrites_can_be_switched_off_and_change_no_score(smoke_model):
    from tagger.first_token import FirstTokenLayer
    texts = ["Russian troops withdrew from Kherson.", "A missile hit a depot.", "Talks resumed in Istanbul today."]
    rewritten, plain = Tagger(smoke_model, mode="fp32"), Tagger(smoke_model, mode="fp32", rewrites=False)
    assert isinstance(rewritten.model.distilbert.transformer.layer[-1], FirstTokenLayer)
    assert not any(isinstance(m, FirstTokenLayer) for m in plain.model.modules())
    assert plain.model.config._attn_implementation == "sdpa" != rewritten.model.config._attn_implementation
    np.testing.assert_allclose(rewritten.scores(texts), plain.scores(texts), atol=1e-5)


def test_int8_weights_have_a_scale_per_output_channel(smoke_model):
    import onnx

    from tagger.onnx_runtime import INT8, cached_path
    Tagger(smoke_model, mode="onnx-int8")  # exports on first use
    graph = onnx.load(cached_path(smoke_model, INT8)).graph
    scales = {tensor.name: list(tensor.dims) for tensor in graph.initializer if tensor.name.endswith("_scale")}
    weights = [node.input[1] for node in graph.node if node.op_type == "MatMulInteger"]
    shapes = [scales[weight.removesuffix("_quantized") + "_scale"] for weight in weights]
    assert shapes and all(len(shape) == 1 and shape[0] > 1 for shape in shapes)  # not one scalar per matrix


def test_the_int8_export_keeps_the_quantizer_out_of_the_log(smoke_model, tmp_path, caplog):
    model = tmp_path / "model"
    shutil.copytree(smoke_model, model)  # exported afresh: its cache is beside the copy
    with caplog.at_level(logging.INFO):
        Tagger(model, mode="onnx-int8")
        assert logging.getLogger().level == logging.INFO  # as it was
    root = [record for record in caplog.records if record.name == "root"]
    assert not [record for record in root if record.levelno < logging.WARNING]
    assert not [record for record in root if "pre-processing" in record.getMessage()]  # done by the fused export
    assert not logging.getLogger().filters


def test_the_int8_export_leaves_what_another_export_writes_in_the_cache_alone(smoke_model, tmp_path):
    from tagger.onnx_runtime import FP32, INT8, cached_path
    model = tmp_path / "model"
    shutil.copytree(smoke_model, model)
    Tagger(model, mode="onnx-fp32")  # the fp32 export, which int8 is quantized from
    fp32 = cached_path(model, FP32)
    # ONNX Runtime's quantizer writes (and deletes) this file beside the model it is given
    theirs = fp32.with_name(fp32.stem + "-inferred.onnx")
    theirs.write_text("another process's shape-inferred model")
    Tagger(model, mode="onnx-int8")
    assert theirs.read_text() == "another process's shape-inferred model"
    assert cached_path(model, INT8).is_file()


def test_scores_do_not_depend_on_batching(smoke_model):
    one_by_one = Tagger(smoke_model, batch_size=1, mode="fp32").scores(TEXTS)
    np.testing.assert_allclose(Tagger(smoke_model, batch_size=3, mode="fp32").scores(TEXTS), one_by_one, atol=1e-5)


def test_batches_group_sentences_of_similar_token_counts(smoke_model):
    # Character counts rank these differently from token counts: place names split into many pieces.
    texts = ["Zaporizhzhia, Sievierodonetsk, Dnipropetrovsk.", "It was a very long and a slow day.",
             "Kyiv.", "Understandably, international negotiations."]
    predictor = Tagger(smoke_model, batch_size=2, mode="fp32")
    lengths = sorted(len(ids) for ids in predictor.tokenizer(texts, predictor.max_length))
    padded, forward = [], predictor.forward
    predictor.forward = lambda batch: padded.append(batch["attention_mask"].shape[1]) or forward(batch)
    predictor.scores(texts)
    assert padded == [lengths[1], lengths[3]]


def test_no_sentences_no_scores(smoke_model):
    assert Tagger(smoke_model).scores([]).shape == (0, 4)


TINY = {"distilbert": dict(dim=32, hidden_dim=64, n_layers=2, n_heads=4),
        "bert": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)}


def tiny_model(architecture, **options):
    from transformers import AutoConfig, AutoModelForSequenceClassification
    config = AutoConfig.for_model(architecture, vocab_size=100, num_labels=4, **TINY[architecture], **options)
    return AutoModelForSequenceClassification.from_config(config).eval()


def padded_batch():
    import torch
    input_ids = torch.randint(5, 100, (3, 9))
    attention_mask = torch.tensor([[1] * 9, [1] * 4 + [0] * 5, [1] * 7 + [0] * 2])  # padded rows
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@pytest.mark.parametrize("architecture", TINY)
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_last_layer_for_the_first_token_only_gives_the_same_logits(architecture, attention):
    import torch

    from tagger.first_token import last_layer_first_token_only
    torch.manual_seed(0)
    model, batch = tiny_model(architecture, attn_implementation=attention), padded_batch()
    with torch.inference_mode():
        full = model(**batch).logits
        assert last_layer_first_token_only(model)
        trimmed = model(**batch).logits
    torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("architecture", TINY)
def test_gelu_fused_into_the_product_gives_the_same_logits(architecture):
    import torch

    from tagger.fused_gelu import fuse_linear_gelu
    torch.manual_seed(0)
    model, batch = tiny_model(architecture), padded_batch()
    with torch.inference_mode():
        unfused = model(**batch).logits
        assert fuse_linear_gelu(model) == 2  # both layers
        torch.testing.assert_close(model(**batch).logits, unfused, atol=1e-5, rtol=1e-4)


def test_a_bf16_model_is_fused_only_where_onednn_has_bf16_kernels(architecture="distilbert"):
    import torch

    from tagger.fused_gelu import fuse_linear_gelu
    model, batch = tiny_model(architecture).to(torch.bfloat16), padded_batch()
    expected = 2 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else 0
    with torch.inference_mode():
        assert fuse_linear_gelu(model) == expected
        assert model(**batch).logits.dtype == torch.bfloat16  # it runs either way


def test_only_the_exact_gelu_is_fused():
    from tagger.fused_gelu import fuse_linear_gelu
    assert fuse_linear_gelu(tiny_model("bert", hidden_act="gelu_new")) == 0  # the tanh approximation


def test_fused_product_and_gelu_compute_the_exact_gelu():
    import torch

    from tagger.fused_gelu import LinearGelu
    torch.manual_seed(0)
    linear, x = torch.nn.Linear(16, 64), 3 * torch.randn(8, 16)  # wide inputs: approximations show
    with torch.inference_mode():
        torch.testing.assert_close(LinearGelu(linear)(x), torch.nn.functional.gelu(linear(x)), atol=1e-5, rtol=1e-4)


def test_other_architectures_are_scored_as_they_are():
    """None of the rewrites knows MPNet (configs/news-mpnet.yaml): its model runs unchanged."""
    import torch
    from transformers import MPNetConfig, MPNetForSequenceClassification

    from tagger.predictor import make_forward
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=100, num_labels=4, **TINY["bert"])
    model, batch = MPNetForSequenceClassification(config).eval(), padded_batch()
    with torch.inference_mode():
        plain = model(**batch).logits.numpy()
        layers = list(model.modules())
        scores = make_forward(model, "fp32")(batch)
    assert list(model.modules()) == layers
    np.testing.assert_allclose(scores, plain, atol=1e-6)


@pytest.mark.parametrize("side", ["right", "left"])
def test_batches_are_padded_as_the_tokenizer_pads_them(smoke_model, side):
    from transformers import AutoTokenizer
    predictor, tokenizer = Tagger(smoke_model, mode="fp32"), AutoTokenizer.from_pretrained(smoke_model)
    predictor.tokenizer.padding_side = tokenizer.padding_side = side
    token_ids = tokenizer(TEXTS, return_attention_mask=False)["input_ids"]
    expected = tokenizer.pad({"input_ids": token_ids}, return_tensors="pt")
    batch = predictor.padded(token_ids)
    for key in ("input_ids", "attention_mask"):
        assert batch[key].tolist() == expected[key].tolist()


@pytest.mark.parametrize("architecture", TINY)
@pytest.mark.parametrize("padding", [True, False])
def test_attention_padded_to_a_multiple_of_16_gives_the_same_logits(architecture, padding):
    import torch

    from tagger.padded_attention import pad_attention_to_multiples_of_16
    torch.manual_seed(0)
    model, batch = tiny_model(architecture), padded_batch()  # 9 tokens: padded to 16 inside attention
    if not padding:
        batch["attention_mask"] = torch.ones_like(batch["attention_mask"])  # transformers passes no mask
    with torch.inference_mode():
        plain = model(**batch).logits
        assert pad_attention_to_multiples_of_16(model)
        torch.testing.assert_close(model(**batch).logits, plain, atol=1e-5, rtol=1e-4)
