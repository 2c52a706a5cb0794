"""How training is spread over processes, and activation checkpointing.

Three layouts, chosen by TrainConfig.parallelism when a run has more than one process:

- ``ddp``: every rank holds the whole model and its own batches; gradients are all-reduced
  (DistributedDataParallel). One process without a group is the same code path.
- ``fsdp``: every rank holds a shard of each parameter, gradient and optimizer state
  (FSDP2, ``torch.distributed.fsdp.fully_shard``, one unit per block plus the root); the
  full parameters of one block exist only while it runs. For models that do not fit one GPU.
- ``pipeline``: the blocks are split into one stage per rank (``torch.distributed.pipelining``);
  each batch is cut into micro-batches that flow through the stages under a GPipe or 1F1B
  schedule. Every rank reads the same batches (there is one data-parallel replica).

Whatever the layout, checkpoints hold the full model state dict (the keys of an unwrapped
``GPT``) and an optimizer state keyed by parameter name, so a checkpoint written under one
layout resumes under another and loads with ``model.evaluate.load_checkpoint``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from model.gpt import GPT, Block

PARALLELISMS = ("ddp", "fsdp", "pipeline")
PIPELINE_SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
TIED_OUTPUT = "lm_head.weight"
TIED_INPUT = "tok_emb.weight"

Batch = tuple[torch.Tensor, torch.Tensor]


def set_activation_checkpointing(model: nn.Module, enabled: bool = True) -> int:
    """Recompute each transformer block's activations in the backward pass; returns the
    number of blocks changed. Gradients are unchanged, memory drops to one block's inputs."""
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    for block in blocks:
        block.checkpoint_activations = enabled
    return len(blocks)


def autocast_context(
    device: torch.device, dtype: torch.dtype
) -> contextlib.AbstractContextManager[Any]:
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def split_layers(n_layer: int, n_stages: int) -> list[range]:
    """Contiguous block ranges, one per stage, sizes differing by at most one.

    The earlier stages get the extra blocks: the last stage also runs the output projection,
    the largest single matmul of a small-vocabulary-heavy model.
    """
    if not 1 <= n_stages <= n_layer:
        raise ValueError(f"cannot split {n_layer} layers into {n_stages} pipeline stages")
    base, extra = divmod(n_layer, n_stages)
    ranges, start = [], 0
    for stage in range(n_stages):
        size = base + (1 if stage < extra else 0)
        ranges.append(range(start, start + size))
        start += size
    return ranges


class Strategy:
    """A model laid out over the ranks: one training micro-step, clipping, validation and the
    full checkpoint state. This base class is a single process or DDP."""

    def __init__(
        self,
        model: GPT,
        device: torch.device,
        dtype: torch.dtype,
        rank: int = 0,
        world_size: int = 1,
        compile: bool = False,
    ) -> None:
        self.model = model
        self.device = device
        self.dtype = dtype
        self.rank = rank
        self.world_size = world_size
        self.module: nn.Module = self._wrap(model, compile)

    # Which stream of batches this rank reads, and how many distinct streams a step covers.
    @property
    def data_rank(self) -> int:
        return self.rank

    @property
    def data_world(self) -> int:
        return self.world_size

    @property
    def optimized(self) -> nn.Module:
        """The module whose parameters this rank's optimizer updates."""
        return self.model

    def _wrap(self, model: GPT, compile: bool) -> nn.Module:
        module: nn.Module = torch.compile(model) if compile else model
        if self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(module, device_ids=device_ids)
        return module

    def _no_sync(self, last_micro: bool) -> contextlib.AbstractContextManager[Any]:
        if self.world_size > 1 and not last_micro:
            return self.module.no_sync()  # type: ignore[operator]
        return contextlib.nullcontext()

    def forward_backward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        grad_accum: int,
        last_micro: bool,
        scaler: torch.amp.GradScaler,
    ) -> torch.Tensor:
        """Accumulate the gradient of loss / grad_accum; return this micro-batch's mean loss.

        Gradients are synchronised once per optimizer step, on the last micro-batch.
        """
        with self._no_sync(last_micro):
            with autocast_context(self.device, self.dtype):
                _, loss = self.module(x, y)
            scaler.scale(loss / grad_accum).backward()
        return loss.detach().float()

    def reduce_loss(self, loss_sum: torch.Tensor) -> float:
        """The mean over ranks of a per-rank loss sum (gloo has no AVG, hence SUM / n)."""
        if self.world_size > 1:
            dist.all_reduce(loss_sum)
        return loss_sum.item() / self.world_size

    def clip_grad_norm(self, max_norm: float) -> float:
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        if isinstance(norm, DTensor):
            norm = norm.full_tensor()
        return float(norm)

    @torch.no_grad()
    def validation_loss(self, windows: Iterable[Batch]) -> float:
        """Mean loss per target over windows, each batch scored by one rank."""
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)
        for x, y, weight in self._my_windows(windows):
            x, y = x.to(self.device), y.to(self.device)
            totals[0] += weight * self._nll(x, y).double()
            totals[1] += weight * (y != -1).sum()
        if self.world_size > 1:
            dist.all_reduce(totals)
        if totals[1] == 0:
            raise ValueError("no validation tokens to score")
        return float(totals[0] / totals[1])

    def _my_windows(self, windows: Iterable[Batch]) -> Iterator[tuple[torch.Tensor, ...]]:
        for i, (x, y) in enumerate(windows):
            if i % self.world_size == self.rank:
                yield x, y, 1

    def _nll(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            with autocast_context(self.device, self.dtype):
                logits, _ = self.model(x)
            return F.cross_entropy(
                logits.float().flatten(0, 1), y.flatten(), ignore_index=-1, reduction="sum"
            )
        finally:
            self.model.train(was_training)

    def state_dicts(self, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        """(model, optimizer) state of the whole model, complete on rank 0.

        A collective under FSDP and pipelining: every rank must call it.
        """
        optim_state = get_optimizer_state_dict(self.model, optimizer)
        return self.model.state_dict(), optim_state

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict) -> None:
        """Load a full, name-keyed optimizer state (as state_dicts writes it)."""
        set_optimizer_state_dict(
            self.optimized, optimizer, state, options=StateDictOptions(full_state_dict=True)
        )


class FullyShardedStrategy(Strategy):
    """FSDP2: parameters, gradients and optimizer state sharded over all ranks."""

    def _wrap(self, model: GPT, compile: bool) -> nn.Module:
        # One FSDP unit per block, so only one block's full parameters are gathered at a
        # time; the root unit holds the (tied) embedding and the final norm.
        for block in model.blocks:
            fully_shard(block)
        fully_shard(model)
        return torch.compile(model) if compile else model

    def _no_sync(self, last_micro: bool) -> contextlib.AbstractContextManager[Any]:
        assert isinstance(self.model, FSDPModule)
        self.model.set_requires_gradient_sync(last_micro)
        return contextlib.nullcontext()

    def _my_windows(self, windows: Iterable[Batch]) -> Iterator[tuple[torch.Tensor, ...]]:
        # Every forward all-gathers parameters, so all ranks must run the same number of
        # forwards: a rank without a batch of its own in the last round scores a copy of
        # another with weight 0.
        batches = list(windows)
        rounds = math.ceil(len(batches) / self.world_size)
        for r in range(rounds):
            index = r * self.world_size + self.rank
            if index < len(batches):
                yield (*batches[index], 1)
            else:
                yield (*batches[-1], 0)

    def state_dicts(self, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state = get_model_state_dict(self.model, options=options)
        optim_state = get_optimizer_state_dict(self.model, optimizer, options=options)
        if model_state and TIED_OUTPUT not in model_state:
            model_state[TIED_OUTPUT] = model_state[TIED_INPUT]
        return model_state, optim_state


class GPTStage(nn.Module):
    """A contiguous slice of a GPT's blocks, plus the embedding on the first stage and the
    final norm and output projection on the last. Parameter names match the full GPT's."""

    def __init__(
        self, model: GPT, layers: Sequence[int], first: bool, last: bool, dtype: torch.dtype
    ) -> None:
        super().__init__()
        self.tok_emb = model.tok_emb if first else None
        self.dropout = model.dropout
        self.blocks = nn.ModuleDict({str(i): model.blocks[i] for i in layers})
        self.norm = model.norm if last else None
        # On the last stage of a multi-stage pipeline this weight is a separate copy of the
        # embedding on stage 0; PipelineStrategy keeps the two in step by summing gradients.
        self.lm_head = model.lm_head if last else None
        self.register_buffer("rope_cos", model.rope_cos, persistent=False)
        self.register_buffer("rope_sin", model.rope_sin, persistent=False)
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast_context(x.device, self.dtype):
            if self.tok_emb is not None:
                x = self.dropout(self.tok_emb(x))
            time = x.size(1)
            cos, sin = self.rope_cos[:time], self.rope_sin[:time]
            for block in self.blocks.values():
                x = block(x, cos, sin)
            if self.lm_head is not None:
                x = self.lm_head(self.norm(x))
        return x


class PipelineStrategy(Strategy):
    """One pipeline stage per rank, driven by a GPipe or 1F1B schedule over micro-batches."""

    def __init__(
        self,
        model: GPT,
        device: torch.device,
        dtype: torch.dtype,
        rank: int,
        world_size: int,
        n_microbatches: int,
        schedule: str = "1f1b",
    ) -> None:
        if dtype == torch.float16:
            raise ValueError("pipeline parallelism does not support float16 loss scaling")
        if schedule not in PIPELINE_SCHEDULES:
            raise ValueError(f"unknown pipeline schedule {schedule!r}: {list(PIPELINE_SCHEDULES)}")
        self.n_microbatches = n_microbatches
        self.schedule_name = schedule
        self.first, self.last = rank == 0, rank == world_size - 1
        self._loss_scale = 1.0
        super().__init__(model, device, dtype, rank, world_size)

    @property
    def data_rank(self) -> int:
        return 0

    @property
    def data_world(self) -> int:
        return 1

    @property
    def optimized(self) -> nn.Module:
        return self.module

    def _wrap(self, model: GPT, compile: bool) -> nn.Module:
        layers = split_layers(model.config.n_layer, self.world_size)[self.rank]
        stage_module = GPTStage(model, layers, self.first, self.last, self.dtype)
        stage = PipelineStage(stage_module, self.rank, self.world_size, self.device)
        schedule_cls = PIPELINE_SCHEDULES[self.schedule_name]
        # Gradients are scaled by the loss function instead (scale_grads=False): the
        # schedule's own scaling would also divide gradients accumulated over earlier steps.
        self.schedule = schedule_cls(
            stage, self.n_microbatches, loss_fn=self._loss_fn, scale_grads=False
        )
        # The tied embedding lives on the first and the last stage; their gradients are summed.
        self._tie_group = dist.new_group([0, self.world_size - 1])
        return torch.compile(stage_module) if compile else stage_module

    def _loss_fn(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        nll = F.cross_entropy(
            logits.float().flatten(0, 1), targets.flatten(), ignore_index=-1, reduction="sum"
        )
        return nll * self._loss_scale

    def _run(self, x: torch.Tensor, y: torch.Tensor, train: bool) -> float:
        """Sum of the loss function over this batch's micro-batches (last stage; 0 elsewhere)."""
        losses: list[torch.Tensor] = []
        args = (x,) if self.first else ()
        kwargs: dict[str, Any] = {"target": y, "losses": losses} if self.last else {}
        run = self.schedule.step if train else self.schedule.eval
        run(*args, **kwargs)
        return float(sum(loss.detach().float() for loss in losses)) if self.last else 0.0

    def forward_backward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        grad_accum: int,
        last_micro: bool,
        scaler: torch.amp.GradScaler,
    ) -> torch.Tensor:
        self._loss_scale = 1.0 / (y.numel() * grad_accum)
        loss = self._run(x, y, train=True) * grad_accum
        if last_micro:
            self._sum_tied_gradients()
        return torch.tensor(loss, device=self.device)

    def _sum_tied_gradients(self) -> None:
        if self.world_size == 1:
            return
        if self.first or self.last:
            weight = self.module.tok_emb.weight if self.first else self.module.lm_head.weight
            if weight.grad is None:
                weight.grad = torch.zeros_like(weight)
            dist.all_reduce(weight.grad, group=self._tie_group)

    def reduce_loss(self, loss_sum: torch.Tensor) -> float:
        dist.broadcast(loss_sum, src=self.world_size - 1)
        return loss_sum.item()

    def _unique_parameters(self) -> list[nn.Parameter]:
        """This stage's parameters, leaving out the last stage's copy of the tied embedding."""
        params = list(self.module.parameters())
        if self.last and not self.first:
            params = [p for p in params if p is not self.module.lm_head.weight]
        return params

    def clip_grad_norm(self, max_norm: float) -> float:
        grads = [p.grad for p in self._unique_parameters() if p.grad is not None]
        squared = torch.nn.utils.get_total_norm(grads).to(self.device, torch.float64) ** 2
        dist.all_reduce(squared)
        total = squared.sqrt()
        torch.nn.utils.clip_grads_with_norm_(self.module.parameters(), max_norm, total)
        return float(total)

    @torch.no_grad()
    def validation_loss(self, windows: Iterable[Batch]) -> float:
        """Every stage walks all windows; short batches are padded with ignored rows so each
        splits into the configured number of micro-batches."""
        self._loss_scale = 1.0
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)
        self.module.eval()
        try:
            for x, y in windows:
                rows = math.ceil(x.size(0) / self.n_microbatches) * self.n_microbatches
                pad = rows - x.size(0)
                x = F.pad(x, (0, 0, 0, pad), value=0).to(self.device)
                y = F.pad(y, (0, 0, 0, pad), value=-1).to(self.device)
                totals[0] += self._run(x, y, train=False)
                totals[1] += (y != -1).sum()
        finally:
            self.module.train()
        dist.broadcast(totals, src=self.world_size - 1)
        if totals[1] == 0:
            raise ValueError("no validation tokens to score")
        return float(totals[0] / totals[1])

    def state_dicts(self, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
        model_state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        optim_state = get_optimizer_state_dict(self.module, optimizer)
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, (model_state, optim_state))
        if self.rank != 0:
            return {}, {}
        merged_model: dict[str, torch.Tensor] = {}
        merged_optim: dict[str, Any] = {"state": {}, "param_groups": []}
        for stage_model, stage_optim in parts:
            merged_model.update(stage_model)
            merged_optim["state"].update(stage_optim["state"])
            for i, group in enumerate(stage_optim["param_groups"]):
                if i == len(merged_optim["param_groups"]):
                    merged_optim["param_groups"].append({**group, "params": []})
                merged_optim["param_groups"][i]["params"] += group["params"]
        # Stored as in an unwrapped GPT, where the tied weight is the embedding's.
        merged_optim["state"].pop(TIED_OUTPUT, None)
        for group in merged_optim["param_groups"]:
            group["params"] = [name for name in group["params"] if name != TIED_OUTPUT]
        return merged_model, merged_optim

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict) -> None:
        names = {name for name, _ in self.module.named_parameters()}
        stage_state = {k: v for k, v in state["state"].items() if k in names}
        if TIED_OUTPUT in names and TIED_OUTPUT not in stage_state:
            stage_state[TIED_OUTPUT] = state["state"][TIED_INPUT]
        groups = []
        for group in state["param_groups"]:
            params = [n for n in group["params"] if n in names]
            if TIED_OUTPUT in names and TIED_INPUT in group["params"]:
                params.append(TIED_OUTPUT)
            groups.append({**group, "params": params})
        set_optimizer_state_dict(
            self.module,
            optimizer,
            {"state": stage_state, "param_groups": groups},
            options=StateDictOptions(full_state_dict=True),
        )


def make_strategy(
    parallelism: str,
    model: GPT,
    device: torch.device,
    dtype: torch.dtype,
    rank: int = 0,
    world_size: int = 1,
    compile: bool = False,
    pipeline_microbatches: int = 1,
    pipeline_schedule: str = "1f1b",
) -> Strategy:
    """The layout for `parallelism`; a single process always gets the plain one."""
    if parallelism not in PARALLELISMS:
        raise ValueError(f"parallelism {parallelism!r} is not one of {PARALLELISMS}")
    if world_size == 1 or parallelism == "ddp":
        return Strategy(model, device, dtype, rank, world_size, compile)
    if parallelism == "fsdp":
        return FullyShardedStrategy(model, device, dtype, rank, world_size, compile)
    if compile:
        raise ValueError("compile is not supported with pipeline parallelism")
    return PipelineStrategy(
        model, device, dtype, rank, world_size, pipeline_microbatches, pipeline_schedule
    )
