"""The Tagger's tokenizer gives the token ids that transformers' AutoTokenizer (the pipeline's) gives."""

import json
import shutil

import pytest

from conftest import BUNDLED_EXPORTS
from tagger.annotations import read_exports
from tagger.labels import DEFAULT
from tagger.tokenizer import SentenceTokenizer, TransformersTokenizer, load_tokenizer


@pytest.fixture(scope="module")
def corpus_texts():
    sentences, _ = read_exports(BUNDLED_EXPORTS, DEFAULT)
    return [sentence.text for sentence in sentences]


@pytest.fixture(scope="module")
def reference(smoke_model):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(smoke_model)


def reference_ids(tokenizer, texts, max_length):
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def test_the_corpus_gets_the_ids_that_transformers_gives(smoke_model, reference, corpus_texts):
    tokenizer = load_tokenizer(smoke_model)
    assert isinstance(tokenizer, SentenceTokenizer)
    assert tokenizer(corpus_texts, 512) == reference_ids(reference, corpus_texts, 512)
    assert (tokenizer.pad_token_id, tokenizer.model_max_length, tokenizer.padding_side) == (
        reference.pad_token_id, reference.model_max_length, reference.padding_side)


@pytest.mark.parametrize("side", ["right", "left"])
def test_long_sentences_are_cut_on_the_configured_side_as_transformers_cuts_them(smoke_model, reference,
                                                                                corpus_texts, side):
    tokenizer = load_tokenizer(smoke_model)
    tokenizer.truncation_side = reference.truncation_side = side
    try:
        ids = tokenizer(corpus_texts[:200], 12)
        assert ids == reference_ids(reference, corpus_texts[:200], 12)
        assert max(map(len, ids)) == 12
    finally:
        reference.truncation_side = "right"


def test_a_folder_without_tokenizer_json_is_read_by_transformers(smoke_model, reference, corpus_texts, tmp_path):
    for name in ("config.json", "tokenizer_config.json"):
        shutil.copy(smoke_model / name, tmp_path / name)
    vocab = json.loads((smoke_model / "tokenizer.json").read_text())["model"]["vocab"]  # a WordPiece model's
    (tmp_path / "vocab.txt").write_text("".join(token + "\n" for token in sorted(vocab, key=vocab.get)))
    tokenizer = load_tokenizer(tmp_path)
    assert isinstance(tokenizer, TransformersTokenizer)
    assert tokenizer(corpus_texts[:50], 512) == reference_ids(reference, corpus_texts[:50], 512)
