"""python -m eval.naive_pipeline MODEL INPUT OUTPUT.jsonl

The baseline of `python -m eval.bench --end_to_end`: transformers' pipeline as its docs show it
(`pipeline("text-classification", model=MODEL, top_k=None)`, its default batch size), run as a
command on a file of one sentence per line, writing each sentence's scores and its labels after
the model's thresholds.
"""

import json
import sys
from pathlib import Path

from transformers import pipeline


def main(model: str, input_path: str, output_path: str) -> None:
    thresholds = json.loads((Path(model) / "thresholds.json").read_text())
    tagger = pipeline("text-classification", model=model, top_k=None)
    texts = [line.strip() for line in Path(input_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(output_path, "w", encoding="utf-8") as out:
        for text, row in zip(texts, tagger(texts)):
            scores = {entry["label"]: entry["score"] for entry in row}
            labels = [label for label, threshold in thresholds.items() if scores[label] >= threshold]
            out.write(json.dumps({"text": text, "labels": labels, "scores": scores}) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
