"""Train a GPT on token shards; single process, or one process per GPU under torchrun.

    python -m model.train --config cfg.json
    torchrun --nproc_per_node=8 -m model.train --config cfg.json

Under torchrun, "parallelism" picks DDP, FSDP or pipeline stages (see model.parallel).

The config is a JSON object of TrainConfig fields. Every log event is printed as one JSON line
on stdout (rank 0 only), and the run's summary is written to <out_dir>/summary.json. The latest
checkpoint is <out_dir>/checkpoint.pt; with "resume": true a run continues from it and reaches
the same result as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from model.data import TokenBatches, iter_eval_windows
from model.gpt import GPT, GPTConfig, configure_adamw, preset
from model.parallel import (
    PARALLELISMS,
    PIPELINE_SCHEDULES,
    Strategy,
    make_strategy,
    set_activation_checkpointing,
)
from model.shards import read_header

CHECKPOINT_NAME = "checkpoint.pt"
SUMMARY_NAME = "summary.json"
# One JSON line per train and eval event, for loss curves; a resumed run first drops the lines
# past its checkpoint, so the file reads as one uninterrupted run.
METRICS_NAME = "metrics.jsonl"
METRIC_EVENTS = ("train", "eval")
SCHEDULES = ("cosine", "wsd")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Dense bf16/fp16 tensor-core peaks (FLOP/s) for MFU, matched against the CUDA device name in
# order. Devices not listed report no MFU unless TrainConfig.peak_flops is given.
PEAK_FLOPS = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("V100", 125e12),
)

LogFn = Callable[[dict[str, Any]], None]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainConfig:
    train_shards: list[str]
    val_shards: list[str] = field(default_factory=list)
    out_dir: str = "out"
    # A preset name from model.gpt.PRESETS, or a dict of GPTConfig fields ("preset" in the dict
    # names the base preset the other fields override).
    model: str | dict[str, Any] = "tiny"
    # None: the shards' vocabulary rounded up to a multiple of 64 (faster matmuls on GPU).
    vocab_size: int | None = None
    # None: the model's block_size.
    block_size: int | None = None
    batch_size: int = 8  # sequences per micro-batch per process
    grad_accum: int = 1
    max_steps: int | None = None
    max_tokens: int | None = None  # steps = ceil(max_tokens / tokens per step) if fewer
    # Stop early once this much wall time has passed. The LR schedule still spans the full
    # step count, so a cut-short cosine run ends above min_lr; "wsd" suits budgets better.
    time_budget_s: float | None = None
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 10
    schedule: str = "cosine"
    decay_fraction: float = 0.2  # wsd: share of steps in the final linear decay
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping
    eval_interval: int = 100  # 0: evaluate only at the end
    eval_batches: int = 20
    log_interval: int = 10
    checkpoint_interval: int = 0  # 0: checkpoint only at the end
    seed: int = 1337
    compile: bool = False
    device: str = "auto"
    dtype: str = "auto"  # auto: bf16 autocast on CUDA (fp16 where bf16 is missing), fp32 else
    resume: bool = False
    peak_flops: float | None = None  # per device, for MFU
    # torch intra-op threads; None keeps torch's default. On a small shared CPU, 1 avoids
    # OpenMP threads spin-waiting on each other, which can slow tiny models down many times.
    num_threads: int | None = None
    # How several processes share the work (ignored in one process): "ddp" replicates the
    # model, "fsdp" shards parameters, gradients and optimizer state, "pipeline" splits the
    # blocks into one stage per process.
    parallelism: str = "ddp"
    # Recompute each block's activations in the backward pass instead of storing them.
    activation_checkpointing: bool = False
    pipeline_schedule: str = "1f1b"  # gpipe | 1f1b
    # Micro-batches each batch is cut into for the pipeline; None: one per sequence.
    pipeline_microbatches: int | None = None

    def __post_init__(self) -> None:
        if not self.train_shards:
            raise ValueError("train_shards is empty")
        if self.max_steps is None and self.max_tokens is None:
            raise ValueError("set max_steps or max_tokens")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {SCHEDULES}")
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not 'auto' or one of {sorted(DTYPES)}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("batch_size and grad_accum must be at least 1")
        if self.parallelism not in PARALLELISMS:
            raise ValueError(f"parallelism {self.parallelism!r} is not one of {PARALLELISMS}")
        if self.pipeline_schedule not in PIPELINE_SCHEDULES:
            raise ValueError(
                f"pipeline_schedule {self.pipeline_schedule!r} is not one of "
                f"{sorted(PIPELINE_SCHEDULES)}"
            )
        if self.pipeline_microbatches is not None and (
            self.pipeline_microbatches < 1 or self.batch_size % self.pipeline_microbatches
        ):
            raise ValueError(
                f"pipeline_microbatches {self.pipeline_microbatches} must divide "
                f"batch_size {self.batch_size}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_at(
    step: int,
    *,
    max_lr: float,
    min_lr: float,
    warmup_steps: int,
    total_steps: int,
    schedule: str = "cosine",
    decay_fraction: float = 0.2,
) -> float:
    """Learning rate for the (0-based) optimizer step `step` of `total_steps`.

    Linear warmup to max_lr over warmup_steps, then either a cosine decay reaching min_lr at the
    last step, or warmup-stable-decay: max_lr until the last decay_fraction of the steps, which
    decay linearly to min_lr (Hu et al. 2024, MiniCPM). WSD can be extended or stopped early
    without retuning, since only the short final phase depends on the total.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if schedule == "cosine":
        progress = min(1.0, (step - warmup_steps + 1) / max(1, total_steps - warmup_steps))
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)
    if schedule == "wsd":
        decay_steps = max(1, round(decay_fraction * total_steps))
        decay_start = total_steps - decay_steps
        if step < decay_start:
            return max_lr
        progress = min(1.0, (step - decay_start + 1) / decay_steps)
        return max_lr + progress * (min_lr - max_lr)
    raise ValueError(f"unknown schedule {schedule!r}")


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> _Dist:
    """Join the process group torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Dist()
    info = _Dist(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world_size)
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def _resolve_device(name: str, dist_info: _Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _model_config(config: TrainConfig, shard_vocab: int) -> GPTConfig:
    spec = config.model
    if isinstance(spec, str):
        base = preset(spec)
    else:
        values = dict(spec)
        base_name = values.pop("preset", None)
        base = preset(base_name, **values) if base_name else GPTConfig.from_dict(values)
    vocab_size = config.vocab_size or 64 * math.ceil(shard_vocab / 64)
    if vocab_size < shard_vocab:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the shards' {shard_vocab}")
    block_size = config.block_size or base.block_size
    return GPTConfig.from_dict(
        {**base.to_dict(), "vocab_size": vocab_size, "block_size": block_size}
    )


def _peak_flops(config: TrainConfig, device: torch.device, dtype: torch.dtype) -> float | None:
    if config.peak_flops is not None:
        return config.peak_flops
    if device.type != "cuda" or dtype == torch.float32:
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS if key in name), None)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file beside path, fsync, then rename over path.

    A crash mid-write leaves the previous checkpoint intact: readers only ever see a complete
    file, because os.replace within one directory is atomic.
    """
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def train(config: TrainConfig, on_log: LogFn | None = None) -> dict[str, Any]:
    """Run training as configured; return the summary (also written to summary.json).

    on_log receives every log event (dicts with an "event" key: start, train, eval, checkpoint,
    done) and is only called on rank 0.
    """
    # A caller that set up the process group itself keeps it; one made here is torn down here.
    owns_group = not dist.is_initialized()
    dist_info = _init_distributed(config.device)
    try:
        return _train(config, on_log, dist_info)
    finally:
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(config: TrainConfig, on_log: LogFn | None, dist_info: _Dist) -> dict[str, Any]:
    started = time.perf_counter()
    device = _resolve_device(config.device, dist_info)
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    dtype = _resolve_dtype(config.dtype, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    metrics_path = Path(config.out_dir) / METRICS_NAME

    def log(event: dict[str, Any]) -> None:
        if not dist_info.is_main:
            return
        if event["event"] in METRIC_EVENTS:
            with open(metrics_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(event) + "\n")
        if on_log is not None:
            on_log(event)

    out_dir = Path(config.out_dir)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    if dist_info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    shard_vocab = max(read_header(Path(p)).vocab_size for p in config.train_shards)
    model_config = _model_config(config, shard_vocab)
    block_size = model_config.block_size
    # Pipeline stages all read the same batches: the whole world is one data-parallel replica.
    pipelined = dist_info.enabled and config.parallelism == "pipeline"
    data_rank, data_world = (0, 1) if pipelined else (dist_info.rank, dist_info.world_size)
    batches = TokenBatches(
        config.train_shards, block_size, config.batch_size, seed=config.seed, rank=data_rank
    )
    tokens_per_step = config.batch_size * block_size * config.grad_accum * data_world
    total_steps = min(
        config.max_steps if config.max_steps is not None else math.inf,
        math.ceil(config.max_tokens / tokens_per_step)
        if config.max_tokens is not None
        else math.inf,
    )

    # Every rank builds the whole model from the same seed (so replicas and stages start
    # identical), loads the checkpoint into it, and only then is it wrapped, sharded or split.
    torch.manual_seed(config.seed)
    raw_model = GPT(model_config).to(device)
    set_activation_checkpointing(raw_model, config.activation_checkpointing)
    n_params = raw_model.num_params()
    n_params_non_embedding = raw_model.num_params(non_embedding=True)
    flops_per_token = raw_model.estimate_flops_per_token()
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    step = 0
    train_loss: float | None = None
    val_loss: float | None = None
    resumed_from: int | None = None
    checkpoint_state: dict[str, Any] | None = None
    if config.resume and checkpoint_path.exists():
        checkpoint_state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        if checkpoint_state["model_config"] != model_config.to_dict():
            raise ValueError(
                f"{checkpoint_path} holds a different model "
                f"({checkpoint_state['model_config']}) than this config asks for "
                f"({model_config.to_dict()})"
            )
        raw_model.load_state_dict(checkpoint_state["model"])

    strategy: Strategy = make_strategy(
        config.parallelism,
        raw_model,
        device,
        dtype,
        dist_info.rank,
        dist_info.world_size,
        compile=config.compile,
        pipeline_microbatches=config.pipeline_microbatches or config.batch_size,
        pipeline_schedule=config.pipeline_schedule,
    )
    optimizer = configure_adamw(
        strategy.optimized,
        config.weight_decay,
        config.lr,
        (config.beta1, config.beta2),
        device.type,
    )
    if checkpoint_state is not None:
        strategy.load_optimizer_state(optimizer, checkpoint_state["optimizer"])
        scaler.load_state_dict(checkpoint_state["scaler"])
        step = resumed_from = checkpoint_state["step"]
        train_loss, val_loss = checkpoint_state["train_loss"], checkpoint_state["val_loss"]
        if dist_info.is_main:
            _set_rng_state(checkpoint_state["rng"], device)
        else:
            torch.manual_seed(config.seed + dist_info.rank + step)
        checkpoint_state = None
    elif dist_info.rank:
        torch.manual_seed(config.seed + dist_info.rank)
    peak_flops = _peak_flops(config, device, dtype)
    if dist_info.is_main:
        kept = [e for e in read_metrics(metrics_path) if e["step"] <= step]
        _write_text(metrics_path, "".join(json.dumps(e) + "\n" for e in kept))

    def checkpoint(at_step: int) -> None:
        # Gathering the full state is a collective under FSDP and pipelining: all ranks call.
        model_state, optimizer_state = strategy.state_dicts(optimizer)
        if dist_info.is_main:
            save_checkpoint(
                checkpoint_path,
                {
                    "model": model_state,
                    "optimizer": optimizer_state,
                    "scaler": scaler.state_dict(),
                    "step": at_step,
                    "tokens": at_step * tokens_per_step,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "config": config.to_dict(),
                    "model_config": model_config.to_dict(),
                    "rng": _rng_state(device),
                },
            )
            log({"event": "checkpoint", "step": at_step, "path": str(checkpoint_path)})

    def evaluate(at_step: int) -> float:
        windows = iter_eval_windows(
            config.val_shards,
            block_size,
            config.batch_size,
            config.eval_batches * config.batch_size,
        )
        loss = strategy.validation_loss(windows)
        log({"event": "eval", "step": at_step, "val_loss": loss})
        return loss

    def mfu(tokens_per_s: float) -> float | None:
        if peak_flops is None:
            return None
        return flops_per_token * tokens_per_s / (peak_flops * dist_info.world_size)

    log(
        {
            "event": "start",
            "step": step,
            "total_steps": total_steps,
            "tokens_per_step": tokens_per_step,
            "n_params": n_params,
            "n_params_non_embedding": n_params_non_embedding,
            "model_config": model_config.to_dict(),
            "device": str(device),
            "dtype": str(dtype).removeprefix("torch."),
            "world_size": dist_info.world_size,
            "parallelism": config.parallelism if dist_info.enabled else "none",
            "resumed_from": resumed_from,
            "skipped_shards": [str(p) for p in batches.skipped],
        }
    )
    run_steps = 0
    run_time = 0.0
    stopped_by = "max_steps"
    evaluated_at = -1
    raw_model.train()
    strategy.module.train()
    while step < total_steps:
        if (
            config.time_budget_s is not None
            and time.perf_counter() - started > config.time_budget_s
        ):
            stopped_by = "time_budget"
            break
        step_started = time.perf_counter()
        lr = lr_at(
            step,
            max_lr=config.lr,
            min_lr=config.min_lr,
            warmup_steps=config.warmup_steps,
            total_steps=total_steps,
            schedule=config.schedule,
            decay_fraction=config.decay_fraction,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=device)
        for micro in range(config.grad_accum):
            x, y = batches.batch(step * config.grad_accum + micro)
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            last_micro = micro == config.grad_accum - 1
            loss_sum += strategy.forward_backward(x, y, config.grad_accum, last_micro, scaler)
        step_loss = strategy.reduce_loss(loss_sum) / config.grad_accum
        if not math.isfinite(step_loss):
            raise NonFiniteLossError(
                f"training loss is {step_loss} at step {step + 1} (lr {lr:.3g}); "
                f"last good checkpoint: {checkpoint_path if checkpoint_path.exists() else 'none'}"
            )
        scaler.unscale_(optimizer)
        grad_norm = strategy.clip_grad_norm(config.grad_clip) if config.grad_clip > 0 else None
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        train_loss = step_loss
        run_steps += 1
        run_time += time.perf_counter() - step_started

        if step % config.log_interval == 0 or step == 1 or step == total_steps:
            tokens_per_s = run_steps * tokens_per_step / run_time
            log(
                {
                    "event": "train",
                    "step": step,
                    "loss": step_loss,
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "tokens": step * tokens_per_step,
                    "tokens_per_s": tokens_per_s,
                    "mfu": mfu(tokens_per_s),
                    "elapsed_s": time.perf_counter() - started,
                }
            )
        if config.val_shards and config.eval_interval and step % config.eval_interval == 0:
            val_loss = evaluate(step)
            evaluated_at = step
        if config.checkpoint_interval and step % config.checkpoint_interval == 0:
            checkpoint(step)

    if run_steps:
        if config.val_shards and evaluated_at != step:
            val_loss = evaluate(step)
        if not (config.checkpoint_interval and step % config.checkpoint_interval == 0):
            checkpoint(step)
    tokens_per_s = run_steps * tokens_per_step / run_time if run_time else None
    summary = {
        "steps": step,
        "tokens": step * tokens_per_step,
        "train_loss": train_loss,
        "val_loss": val_loss,
        "tokens_per_s": tokens_per_s,
        "mfu": mfu(tokens_per_s) if tokens_per_s else None,
        "checkpoint": str(checkpoint_path),
        "n_params": n_params,
        "model_config": model_config.to_dict(),
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "world_size": dist_info.world_size,
        "parallelism": config.parallelism if dist_info.enabled else "none",
        "activation_checkpointing": config.activation_checkpointing,
        "stopped_by": stopped_by,
        "elapsed_s": time.perf_counter() - started,
    }
    if dist_info.is_main:
        _write_json(out_dir / SUMMARY_NAME, summary)
    log({"event": "done", **summary})
    return summary


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The train and eval events of a run's metrics.jsonl (none if it does not exist).

    A line cut short by a kill mid-write is skipped.
    """
    path = Path(path)
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            events.append(json.loads(line))
    return events


def _write_json(path: Path, value: dict[str, Any]) -> None:
    _write_text(path, json.dumps(value, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train a GPT on token shards.")
    parser.add_argument("--config", required=True, type=Path, help="JSON of TrainConfig fields")
    parser.add_argument("--resume", action="store_true", help="continue from out_dir's checkpoint")
    args = parser.parse_args(argv)
    values = json.loads(args.config.read_text())
    if args.resume:
        values["resume"] = True
    config = TrainConfig.from_dict(values)

    def print_event(event: dict[str, Any]) -> None:
        print(json.dumps(event), flush=True)

    try:
        train(config, on_log=print_event)
    except NonFiniteLossError as error:
        print(json.dumps({"event": "error", "error": str(error)}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
