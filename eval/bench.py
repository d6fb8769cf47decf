"""python -m eval.bench --model DIR [--sentences N] [--data EXPORT...] [--passes N] [--output_dir DIR]

Side by side, on the same sentences and the same saved model: the naive
`pipeline("text-classification", model=DIR, top_k=None)` called as its docs show (default batch
size), and this repo's predictor in each mode. Each system runs in its own process (so its peak
memory is its own), all loaded at once and timed in turns, pass by pass, so that the shared
machine's changing speed affects all alike. Reports sentences/s as the median of --passes passes
after the first (steady state, as in a long run; the first pass is reported beside it), peak memory,
speed-up over the pipeline, macro-F1 on the labeled sentences (with --data), the machine's measured
matmul throughput and the FLOPs per sentence of the model and of the predictor (so speed is also a
fraction of what the hardware allows), and steady-state training samples/s of short runs (fp32, and
bf16 mixed precision where the device has bf16 units) at each of --train_batch_sizes.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from tagger.annotations import read_exports
from tagger.artifacts import write_json
from tagger.cli import (MODES, ArgumentParser, add_model_option, add_output_dir_option, default_output_dir,
                        run_command)
from tagger import labels as label_schema
from tagger.metrics import apply_thresholds, report
from tagger.modes import has_bf16_units
from tagger.predictor import Tagger, read_thresholds
from train.prepare import prepare

REPO = Path(__file__).resolve().parent.parent
SYSTEMS = ("pipeline", *(mode for mode in MODES if mode != "auto"))
ANSWER = "bench-worker: "  # marks the worker's answers among whatever else libraries print


def bench_sentences(data: list[str], count: int, schema):
    """(texts, multi-hot gold or None): the labeled sentences when given (read with the model's
    labels), else the seed sentences, repeated or cut to `count`."""
    if data:
        sentences, _ = read_exports(data, schema)
        texts, gold = [s.text for s in sentences], [schema.multi_hot(s.labels) for s in sentences]
    else:
        texts, gold = [t["data"]["text"] for t in prepare([REPO / "seeds"])], None
    repeats = -(-count // len(texts))
    return (texts * repeats)[:count], (None if gold is None else (gold * repeats)[:count])


def scorer(system: str, model_dir: Path):
    """(score function, thresholds) for one system."""
    if system != "pipeline":
        predictor = Tagger(model_dir, mode=system)
        return predictor.scores, predictor.thresholds
    from transformers import pipeline
    tagger = pipeline("text-classification", model=str(model_dir), top_k=None)

    def score(texts):
        return np.array([[{d["label"]: d["score"] for d in row}[label] for label in schema.labels]
                         for row in tagger(texts)])
    schema = label_schema.of_model(model_dir)
    return score, read_thresholds(model_dir, schema.labels)


class Worker:
    """One system in its own process (so its peak memory is its own), loaded once and then told,
    one pass at a time, when to score the sentences."""

    def __init__(self, system: str, args):
        data = [str(Path(f).resolve()) for f in args.data]
        command = [sys.executable, "-m", "eval.bench", "--worker", system, "--model", str(args.model.resolve()),
                   "--sentences", str(args.sentences), *(["--data", *data] if data else [])]
        self.log = tempfile.TemporaryFile("w+")  # stderr: progress bars would fill a pipe
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        text=True, cwd=REPO)
        self.speeds, self.error = [], None

    def ask(self, command: str | None = None) -> dict:
        """Send a command (none: wait for the worker to be ready) and return its answer."""
        if self.error:
            return {}
        try:
            if command:
                self.process.stdin.write(command + "\n")
                self.process.stdin.flush()
            for line in self.process.stdout:
                if line.startswith(ANSWER):
                    return json.loads(line[len(ANSWER):])
        except OSError:
            pass
        self.process.wait()
        self.log.seek(0)
        lines = self.log.read().strip().splitlines()
        self.error = lines[-1] if lines else f"exit status {self.process.returncode}"
        return {}

    def timed_pass(self):
        self.speeds += self.ask("pass").values()

    def result(self) -> dict:
        answer = self.ask("finish")
        if self.error:
            return {"error": self.error}
        first, timed = self.speeds[0], self.speeds[1:]
        return {"sentences_per_second": float(np.median(timed)), "passes_sentences_per_second": timed,
                "first_pass_sentences_per_second": first, **answer}


def side_by_side(args) -> dict:
    """Every system loaded at once, each in its own process; then passes over the sentences taken in
    turns (one system at a time), so that a change in a shared machine's speed affects all systems
    alike. The first pass of each is reported apart: it includes one-off work (oneDNN builds a kernel
    for each new batch shape) that a long run over an archive pays once; the figure is the median of
    the `--passes` passes after it."""
    workers = {system: Worker(system, args) for system in args.systems}
    for worker in workers.values():
        worker.ask()  # ready: loading is over before any timing starts
    for _ in range(1 + args.passes):
        for worker in workers.values():
            worker.timed_pass()
    return {system: worker.result() for system, worker in workers.items()}


def serve(system: str, model_dir: Path, texts: list[str], gold):
    """The worker's side: load, then score the sentences on each "pass" and answer the speed; on
    "finish", answer the peak memory and the macro-F1 of the last pass's scores."""
    score, thresholds = scorer(system, model_dir)
    print(ANSWER + json.dumps({}), flush=True)
    for command in sys.stdin:
        if command.strip() != "pass":
            break
        start = time.perf_counter()
        scores = score(texts)
        print(ANSWER + json.dumps({"speed": len(texts) / (time.perf_counter() - start)}), flush=True)
    answer = {"peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if gold is not None:
        answer["macro_f1"] = report(gold, apply_thresholds(scores, thresholds), list(thresholds))["macro"]["f1"]
    print(ANSWER + json.dumps(answer), flush=True)


def end_to_end(args) -> dict:
    """Whole commands on one file of --end_to_end sentences, taken in turns: `python -m eval.predict`
    in its default mode (imports, model load and the ONNX cache included, as a user meets them)
    and transformers' pipeline as a command (eval.naive_pipeline). The first run of eval.predict
    comes first and is reported apart: it builds the caches a later run finds."""
    texts, _ = bench_sentences(args.data, args.end_to_end, label_schema.of_model(args.model))
    model = str(args.model.resolve())
    with tempfile.TemporaryDirectory() as work:
        sentences = Path(work) / "sentences.txt"
        sentences.write_text("".join(" ".join(text.split()) + "\n" for text in texts), encoding="utf-8")
        outputs = {name: Path(work) / f"{name}.jsonl" for name in ("pipeline", "predict")}
        commands = {"pipeline": ["-m", "eval.naive_pipeline", model, str(sentences), str(outputs["pipeline"])],
                    "predict": ["-m", "eval.predict", "--model", model, "--input", str(sentences),
                                "--output", str(outputs["predict"])]}
        first, log = timed_command(commands["predict"])
        seconds = {name: [] for name in commands}
        for _ in range(args.end_to_end_runs):
            for name, command in commands.items():
                seconds[name].append(timed_command(command)[0])
        labels = {name: [json.loads(line)["labels"] for line in path.open()] for name, path in outputs.items()}
    median = {name: float(np.median(times)) for name, times in seconds.items()}
    mode = next((line.split("Mode auto: ")[1].split(",")[0] for line in log.splitlines() if "Mode auto: " in line), "")
    return {"sentences": len(texts), "mode": mode, "seconds": seconds, "median_seconds": median,
            "first_run_seconds": first, "speedup": median["pipeline"] / median["predict"],
            "labels_as_pipeline": float(np.mean([a == b for a, b in zip(*labels.values())]))}


def timed_command(arguments: list[str]) -> tuple[float, str]:
    """(wall seconds, stderr) of `python ARGUMENTS` run from the repository."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *arguments], cwd=REPO, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(arguments)} failed: {result.stderr[-2000:]}")
    return time.perf_counter() - start, result.stderr


def matmul_flops(dtype=torch.float32, size: int = 2048, repeats: int = 10) -> float:
    """Measured matrix-multiply throughput of the device the predictor uses (FLOP/s): the
    bound for a transformer, whose work is almost all matrix products."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    size, repeats = (8192, 50) if device == "cuda" else (size, repeats)
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    torch.matmul(a, b)
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    synchronize()
    return 2 * size ** 3 * repeats / (time.perf_counter() - start)


def flops_per_sentence(model_dir: Path, texts: list[str]) -> dict:
    """Forward FLOPs of the average sentence as PyTorch's FlopCounterMode counts them, for the whole
    model (the pipeline, training) and for the predictor, whose last layer runs for the first token
    only. Over 200 sentences spread through `texts`, each run alone (no padding); attention goes
    through the math kernel, whose matrix products the counter sees."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoTokenizer

    from tagger.first_token import last_layer_first_token_only
    from tagger.predictor import load_model
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = load_model(model_dir, label_schema.of_model(model_dir).labels)
    spread = texts[::max(1, len(texts) // 200)][:200]
    sample = [tokenizer(text, truncation=True, return_tensors="pt") for text in spread]
    counts = {}
    for name in ("model", "predictor"):
        if name == "predictor":
            last_layer_first_token_only(model)
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.inference_mode():
            for encoded in sample:
                model(**encoded)
        counts[name] = counter.get_total_flops() / len(sample)
    return {**counts, "tokens": float(np.mean([len(e["input_ids"][0]) for e in sample]))}


def training_precisions() -> tuple[str, ...]:
    """fp32, and bf16 mixed precision where the device has bf16 units (`mixed_precision` choices)."""
    if torch.cuda.is_available():
        has_bf16 = torch.cuda.is_bf16_supported()
    else:
        has_bf16 = has_bf16_units()
    return ("no", "bf16") if has_bf16 else ("no",)


class SteadyClock(TrainerCallback):
    """Times the optimizer steps after the first `skip`, which carry one-off work (CUDA and oneDNN
    kernel choice, allocator growth) that a real run pays once."""

    def __init__(self, skip: int):
        self.skip, self.start, self.seconds = skip, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step not in (self.skip, state.max_steps):
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # the GPU runs behind the Python loop
        if state.global_step == self.skip:
            self.start = time.perf_counter()
        else:
            self.seconds = time.perf_counter() - self.start


def training_throughput(model_dir: Path, texts: list[str], precision: str, batch_size: int = 16,
                        steps: int = 30, skip: int = 5) -> float:
    """Steady-state samples/s of a short fine-tuning run of the saved model with the Trainer settings
    of `python -m train` (padding, length grouping), without evaluation or checkpoints."""
    import dataclasses

    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer)

    from train.config import TrainConfig
    from train.trainer import training_arguments, weighted_bce
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    # Enough rows for the Trainer's length grouping, which sorts groups of up to 50 batches (and
    # none when the data holds fewer than 8 batches); repeats where `texts` is short.
    texts = texts * -(-40 * batch_size // len(texts))
    rows = Dataset.from_dict({"text": texts, "labels": [[0.0] * model.config.num_labels] * len(texts)})
    rows = rows.map(lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True)
    clock = SteadyClock(skip)
    with tempfile.TemporaryDirectory() as work:
        config = TrainConfig(max_steps=skip + steps, warmup_steps=0, mixed_precision=precision,
                             per_device_train_batch_size=batch_size)
        args = dataclasses.replace(training_arguments(config, work), eval_strategy="no", save_strategy="no",
                                   load_best_model_at_end=False, disable_tqdm=True)
        Trainer(model=model, args=args, train_dataset=rows, data_collator=DataCollatorWithPadding(tokenizer),
                compute_loss_func=weighted_bce(None), callbacks=[clock]).train()
    return steps * batch_size / clock.seconds


def table(results: dict) -> str:
    base = results["systems"]["pipeline"].get("sentences_per_second")
    lines = [f"{'system':18}{'sent/s':>10}{'x pipeline':>12}{'1st pass':>10}{'peak MB':>10}{'macro-F1':>10}"
             f"{'of bound':>10}"]
    for name, r in results["systems"].items():
        if "error" in r:
            lines.append(f"{name:18}  failed: {r['error']}")
            continue
        f1 = f"{r['macro_f1']:.4f}" if "macro_f1" in r else "-"
        bound = results["matmul_flops"].get("bf16" if name == "bf16" else "" if "int8" in name else "fp32")
        work = results["flops_per_sentence"]["model" if name == "pipeline" else "predictor"]
        fraction = f"{r['sentences_per_second'] * work / bound:.1%}" if bound else "n/a"
        lines.append(f"{name:18}{r['sentences_per_second']:10.1f}{r['sentences_per_second'] / base:12.2f}"
                     f"{r['first_pass_sentences_per_second']:10.1f}{r['peak_memory_mb']:10.0f}{f1:>10}{fraction:>10}")
    if "end_to_end" in results:
        run = results["end_to_end"]
        lines += ["", f"end to end, {run['sentences']} sentences: python -m eval.predict (mode auto: {run['mode'] or 'fp32'}) "
                  f"{run['median_seconds']['predict']:.1f} s (first run {run['first_run_seconds']:.1f} s), pipeline "
                  f"{run['median_seconds']['pipeline']:.1f} s: {run['speedup']:.2f}x; labels as the pipeline's on "
                  f"{run['labels_as_pipeline']:.2%} of sentences"]
    flops, work = results["matmul_flops"], results["flops_per_sentence"]
    bf16_bound = f"{flops['bf16'] / 1e9:.0f} GFLOP/s" if flops["bf16"] else "n/a (no bf16 units)"
    lines += ["", f"matmul bound: fp32 {flops['fp32'] / 1e9:.0f} GFLOP/s, bf16 {bf16_bound}; "
              f"per sentence ({work['tokens']:.0f} tokens): model {work['model'] / 1e9:.2f} GFLOP, "
              f"predictor {work['predictor'] / 1e9:.2f} GFLOP (last layer for the first token only)"]
    for run in results["training"]:
        bound = "bf16" if run["mixed_precision"] == "bf16" else "fp32"
        fraction = run["samples_per_second"] * 3 * work["model"] / flops[bound]
        lines.append(f"training, mixed_precision {run['mixed_precision']}, batch {run['batch_size']}: "
                     f"{run['samples_per_second']:.1f} samples/s ({fraction:.1%} of the {bound} bound, "
                     "counting 3x the forward FLOPs per sample)")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = ArgumentParser("python -m eval.bench", __doc__)
    add_model_option(parser)
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--data", nargs="*", default=[], help="Labeled exports: time on them and report macro-F1.")
    parser.add_argument("--passes", type=int, default=3, help="Timed passes after the first; the median is reported.")
    parser.add_argument("--train_batch_sizes", type=int, nargs="+", default=[16],
                        help="Batch sizes of the training runs (default: the configs' 16).")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS,
                        help="Systems to compare (default: all; bf16 only where there are bf16 units, as it is "
                             "emulated, hundreds of times slower, elsewhere).")
    parser.add_argument("--end_to_end", type=int, default=0, metavar="N",
                        help="Also time whole commands on N sentences: eval.predict against the pipeline.")
    parser.add_argument("--end_to_end_runs", type=int, default=2, help="Runs of each command, in turns.")
    add_output_dir_option(parser, "MODEL-outputs/bench")
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    texts, gold = bench_sentences(args.data, args.sentences, label_schema.of_model(args.model))
    args.systems = args.systems or [s for s in SYSTEMS if s != "bf16" or "bf16" in training_precisions()]
    if args.worker:
        serve(args.worker, args.model, texts, gold)
        return
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
                   + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
        "sentences": len(texts), "flops_per_sentence": flops_per_sentence(args.model, texts),
        # Without bf16 units the bf16 product is emulated, far from any bound (and takes minutes).
        "matmul_flops": {"fp32": matmul_flops(torch.float32),
                         "bf16": matmul_flops(torch.bfloat16) if "bf16" in training_precisions() else None},
        "systems": side_by_side(args),
        "training": [{"mixed_precision": precision, "batch_size": size,
                      "samples_per_second": training_throughput(args.model, texts, precision, size)}
                     for precision in training_precisions() for size in args.train_batch_sizes],
        **({"end_to_end": end_to_end(args)} if args.end_to_end else {}),
    }
    print(table(results))
    write_json((args.output_dir or default_output_dir(args.model, "bench")) / "bench.json", results)


if __name__ == "__main__":
    run_command(main)
