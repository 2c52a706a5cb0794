"""Training throughput: lmforge's training step against a plain eager PyTorch loop.

    python -m bench.training                       # CPU: tiny @ seq 128, small-cpu @ seq 256
    python -m bench.training --device cuda         # H100: 124M (gpt2-small) @ seq 1024, bf16

lmforge's side is ``model.train.train`` itself (shards on disk, the LR schedule, gradient
clipping, bf16 autocast on CUDA, optional torch.compile) and its tokens/s is the run's own
measurement over the optimizer steps. The baseline, in the same run, is the loop every
tutorial writes for the same model and batch: forward, backward, AdamW step, on batches
already in memory, fp32, no accumulation, no autocast, no compile. Both include their first
(warm-up) steps. On CUDA the MFU is reported against the H100's 989 TFLOP/s dense bf16 peak.
A markdown section is printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from model.gpt import GPT, preset
from model.shards import write_shard
from model.train import TrainConfig, train

H100_PEAK_FLOPS = 989e12
CPU_CASES = [("tiny", 128), ("small-cpu", 256)]
CUDA_CASES = [("gpt2-small", 1024)]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def eager_tokens_per_s(
    name: str, seq: int, batch: int, steps: int, vocab: int, device: str
) -> tuple[float, float]:
    """(tokens/s, FLOPs per token) of the plain loop on random batches."""
    torch.manual_seed(0)
    model = GPT(preset(name, vocab_size=vocab, block_size=seq)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    data = torch.randint(0, vocab, (steps, batch, seq + 1), device=device)
    _sync(device)
    started = time.perf_counter()
    for rows in data:
        _, loss = model(rows[:, :-1], rows[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    elapsed = time.perf_counter() - started
    return steps * batch * seq / elapsed, model.estimate_flops_per_token()


def lmforge_tokens_per_s(
    name: str, seq: int, batch: int, steps: int, vocab: int, device: str, compile: bool
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        shard = Path(tmp) / "train.bin"
        write_shard(shard, [rng.integers(0, vocab, 200_000)], vocab)
        config = TrainConfig(
            train_shards=[str(shard)],
            out_dir=str(Path(tmp) / "out"),
            model=name,
            vocab_size=vocab,
            block_size=seq,
            batch_size=batch,
            max_steps=steps,
            eval_interval=0,
            log_interval=steps,
            device=device,
            compile=compile,
            num_threads=torch.get_num_threads(),
        )
        return float(train(config)["tokens_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, help="optimizer steps per measurement")
    parser.add_argument("--batch", type=int, help="sequences per step")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile lmforge's model")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    cases = CUDA_CASES if cuda else CPU_CASES
    steps = args.steps or (30 if cuda else 12)
    batch = args.batch or (16 if cuda else 8)

    where = torch.cuda.get_device_name() if cuda else f"CPU, {args.threads} thread(s)"
    print(f"## Training throughput ({where})\n")
    command = f"python -m bench.training --device {args.device} --steps {steps} --batch {batch}"
    if not cuda:
        command += f" --threads {args.threads}"
    if args.compile:
        command += " --compile"
    print(f"`{command}`; vocabulary 8192, {steps} steps of {batch} sequences, warm-up included.\n")
    header = "| model | seq | eager loop tok/s | lmforge tok/s | lmforge / eager |"
    rule = "|---|---:|---:|---:|---:|"
    if cuda:
        header += " eager MFU | lmforge MFU |"
        rule += "---:|---:|"
    print(header)
    print(rule)
    for name, seq in cases:
        vocab = 8192
        eager, flops_per_token = eager_tokens_per_s(name, seq, batch, steps, vocab, args.device)
        ours = lmforge_tokens_per_s(name, seq, batch, steps, vocab, args.device, args.compile)
        row = f"| {name} | {seq} | {eager:,.0f} | {ours:,.0f} | {ours / eager:.2f} |"
        if cuda:
            row += f" {eager * flops_per_token / H100_PEAK_FLOPS:.1%} |"
            row += f" {ours * flops_per_token / H100_PEAK_FLOPS:.1%} |"
        print(row)
    print(
        "\nlmforge: model.train.train (shards, schedule, clipping; bf16 autocast on CUDA). "
        "Eager: forward/backward/AdamW on in-memory batches, fp32."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
