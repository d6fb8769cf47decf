"""A model folder's fast tokenizer (its tokenizer.json), run by the tokenizers library itself.

It gives the token ids that transformers' tokenizer gives (a test checks the bundled corpus), but
without importing transformers: a process that loaded the tokenizer through transformers took
1.9-2.9 s on a 2-core CPU, against 0.1-0.2 s this way (docs/performance.md).
"""

import json
from pathlib import Path

UNLIMITED = 10**30  # transformers' model_max_length when the folder sets none


class SentenceTokenizer:
    """tokenizer(texts, max_length) -> one list of token ids per text, special tokens added and
    truncated to max_length as tokenizer_config.json says (its truncation_side)."""

    def __init__(self, model_dir: Path):
        from tokenizers import Tokenizer

        config_path = model_dir / "tokenizer_config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        self.backend = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.backend.no_padding()  # padding is the Tagger's, per batch
        self.model_max_length = int(config.get("model_max_length") or UNLIMITED)
        self.padding_side = config.get("padding_side", "right")
        self.truncation_side = config.get("truncation_side", "right")
        pad_token = config.get("pad_token")
        pad_token = pad_token.get("content") if isinstance(pad_token, dict) else pad_token
        # Padding is masked out, so that any id does where the folder names no pad token.
        self.pad_token_id = (self.backend.token_to_id(pad_token) if pad_token else None) or 0

    def __call__(self, texts: list[str], max_length: int) -> list[list[int]]:
        self.backend.enable_truncation(max_length, direction=self.truncation_side)
        return [encoding.ids for encoding in self.backend.encode_batch(texts)]


class TransformersTokenizer:
    """The same interface over transformers' AutoTokenizer, for folders without a tokenizer.json."""

    def __init__(self, model_dir: Path):
        from transformers import AutoTokenizer

        self.backend = AutoTokenizer.from_pretrained(model_dir)
        self.model_max_length, self.padding_side = self.backend.model_max_length, self.backend.padding_side
        self.pad_token_id = self.backend.pad_token_id or 0

    def __call__(self, texts: list[str], max_length: int) -> list[list[int]]:
        return self.backend(texts, truncation=True, max_length=max_length, return_attention_mask=False,
                            return_token_type_ids=False)["input_ids"]


def load_tokenizer(model_dir: Path):
    if (model_dir / "tokenizer.json").is_file():
        return SentenceTokenizer(model_dir)
    return TransformersTokenizer(model_dir)
