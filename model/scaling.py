"""Chinchilla-style training plans: how big a model, how many tokens, and will it fit.

Training compute is C = 6 * N * D FLOPs for N parameters and D tokens (Kaplan et al. 2020;
Hoffmann et al. 2022). Loss is modelled as L(N, D) = E + A / N^alpha + B / D^beta, with the
constants of Hoffmann et al. 2022 (approach 3) and of the Epoch AI replication (Besiroglu et al.
2024), whose corrected fit lands close to the paper's ~20 tokens per parameter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from model.gpt import PRESETS, GPTConfig, count_params

TOKENS_PER_PARAM = 20.0
# Muennighoff et al. 2023 ("Scaling Data-Constrained Language Models"): repeated tokens are
# worth less each epoch; R* is the number of repetitions after which their value decays by 1/e.
REPETITION_DECAY = 15.39
# Fraction of device memory the plan may use; the rest covers the CUDA context, allocator
# fragmentation and temporary buffers the estimate does not model.
USABLE_MEMORY_FRACTION = 0.9

# Model sizes Hoffmann et al. trained to make their fit.
FIT_RANGE = (7e7, 1.6e10)

OPTIMIZER_BYTES_PER_PARAM = {"adamw": 8, "adam": 8, "sgd": 4}


@dataclass(frozen=True)
class LossFit:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    name: str = ""


HOFFMANN_2022 = LossFit(
    E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, name="Hoffmann et al. 2022"
)
EPOCH_2024 = LossFit(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658, name="Epoch AI 2024")
FITS: dict[str, LossFit] = {"hoffmann_2022": HOFFMANN_2022, "epoch_2024": EPOCH_2024}


def predicted_loss(fit: LossFit, n_params: float, n_tokens: float) -> float:
    """L(N, D) = E + A / N^alpha + B / D^beta, in nats per token."""
    return fit.E + fit.A / n_params**fit.alpha + fit.B / n_tokens**fit.beta


def compute_optimal(fit: LossFit, compute_flops: float) -> tuple[float, float]:
    """(N_opt, D_opt) minimising the fit's loss subject to 6 * N * D = C.

    Setting the derivative of L(N, C / 6N) to zero gives N = G * (C/6)^(beta/(alpha+beta)) and
    D = (C/6)^(alpha/(alpha+beta)) / G with G = (alpha * A / (beta * B))^(1/(alpha+beta)).
    """
    exponent_sum = fit.alpha + fit.beta
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1.0 / exponent_sum)
    n = g * (compute_flops / 6.0) ** (fit.beta / exponent_sum)
    d = (compute_flops / 6.0) ** (fit.alpha / exponent_sum) / g
    return n, d


def tokens_per_param_rule(
    compute_flops: float, tokens_per_param: float = TOKENS_PER_PARAM
) -> tuple[float, float]:
    """(N, D) with D = k * N and 6 * N * D = C: the "20 tokens per parameter" rule of thumb."""
    n = math.sqrt(compute_flops / (6.0 * tokens_per_param))
    return n, tokens_per_param * n


def compute_budget(gpus: int, hours: float, peak_flops: float, mfu: float = 0.4) -> float:
    """FLOPs a run can do: devices * seconds * peak FLOP/s per device * model FLOPs utilisation."""
    return gpus * hours * 3600.0 * peak_flops * mfu


def effective_tokens(unique_tokens: float, epochs: float) -> float:
    """Tokens worth of fresh data when unique_tokens are seen for `epochs` epochs.

    D' = U + U * R* * (1 - exp(-R / R*)) with R = epochs - 1 repetitions (Muennighoff et al.
    2023). Below one epoch every token is fresh, so D' is simply the tokens seen.
    """
    if epochs <= 1.0:
        return unique_tokens * epochs
    repeats = epochs - 1.0
    return unique_tokens * (1.0 + REPETITION_DECAY * (1.0 - math.exp(-repeats / REPETITION_DECAY)))


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per device for one training step; a planning estimate, good to tens of percent."""

    weights: float
    grads: float
    optimizer: float
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer + self.activations

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def memory_estimate(
    n_params: float,
    n_layer: int,
    n_embd: int,
    n_head: int,
    block_size: int,
    micro_batch: int,
    dtype_bytes: int = 2,
    optimizer: str = "adamw",
    *,
    vocab_size: int = 0,
    hidden_dim: int | None = None,
    activation_checkpointing: bool = False,
    flash_attention: bool = True,
    shard_over: int = 1,
) -> MemoryEstimate:
    """Memory of weights, gradients, optimizer state and activations for one micro-batch.

    Weights and gradients stay float32 (autocast computes in `dtype_bytes` but keeps float32
    master weights); AdamW adds two float32 moments. `shard_over` devices split all three
    (ZeRO-3 / FSDP full sharding). Activations saved for backward, per layer and token, in
    elements of the compute dtype: two norms' inputs and outputs (4d), q, k, v and rotated
    q, k (5d), attention output (d) and the SwiGLU gate, up, silu(gate) and product (4h).
    Without flash attention the (heads, T, T) scores and probabilities are stored too. The
    logits cost (dtype + two float32 copies for the loss and its gradient) per vocabulary
    entry. With activation checkpointing only each layer's input is kept, plus one layer
    being recomputed.
    """
    if optimizer not in OPTIMIZER_BYTES_PER_PARAM:
        raise ValueError(
            f"unknown optimizer {optimizer!r}; known: {sorted(OPTIMIZER_BYTES_PER_PARAM)}"
        )
    hidden = hidden_dim if hidden_dim is not None else 8 * n_embd / 3
    tokens = micro_batch * block_size
    per_layer = tokens * (10 * n_embd + 4 * hidden) * dtype_bytes
    if not flash_attention:
        per_layer += 2 * micro_batch * n_head * block_size**2 * dtype_bytes
    if activation_checkpointing:
        layers = n_layer * tokens * n_embd * dtype_bytes + per_layer
    else:
        layers = n_layer * per_layer
    logits = tokens * vocab_size * (dtype_bytes + 8)
    return MemoryEstimate(
        weights=4.0 * n_params / shard_over,
        grads=4.0 * n_params / shard_over,
        optimizer=OPTIMIZER_BYTES_PER_PARAM[optimizer] * n_params / shard_over,
        activations=float(layers + logits),
    )


def _config_memory(
    config: GPTConfig,
    micro_batch: int,
    dtype_bytes: int,
    activation_checkpointing: bool = False,
    shard_over: int = 1,
) -> MemoryEstimate:
    return memory_estimate(
        count_params(config),
        config.n_layer,
        config.n_embd,
        config.n_head,
        config.block_size,
        micro_batch,
        dtype_bytes,
        vocab_size=config.vocab_size,
        hidden_dim=config.hidden_dim,
        activation_checkpointing=activation_checkpointing,
        shard_over=shard_over,
    )


def _techniques_to_fit(
    config: GPTConfig,
    memory_bytes: float | None,
    micro_batch: int,
    n_devices: int,
    allow_bf16: bool,
) -> tuple[list[str], MemoryEstimate, bool]:
    """The fewest techniques, added in order of cost, that make a config fit in memory."""
    steps: list[tuple[str, dict[str, Any]]] = []
    if allow_bf16:
        steps.append(("bf16 autocast", {"dtype_bytes": 2}))
    steps.append(("activation checkpointing", {"activation_checkpointing": True}))
    if n_devices > 1:
        steps.append(("ZeRO/FSDP sharding", {"shard_over": n_devices}))
    settings: dict[str, Any] = {"dtype_bytes": 4}
    techniques: list[str] = []
    estimate = _config_memory(config, micro_batch, **settings)
    if memory_bytes is None:
        return techniques, estimate, True
    usable = USABLE_MEMORY_FRACTION * memory_bytes
    for name, change in steps:
        if estimate.total <= usable:
            break
        settings.update(change)
        techniques.append(name)
        estimate = _config_memory(config, micro_batch, **settings)
    return techniques, estimate, estimate.total <= usable


@dataclass
class TrainingPlan:
    name: str
    config: GPTConfig
    n_params: int
    n_params_non_embedding: int
    tokens_available: float
    train_tokens: float
    epochs: float
    tokens_per_param: float
    compute_budget_flops: float
    flops: float
    predicted_loss: dict[str, float]
    compute_optimal: dict[str, dict[str, float]]
    memory: MemoryEstimate
    memory_bytes: float | None
    fits_in_memory: bool
    techniques: list[str]
    memory_with_techniques: MemoryEstimate
    fits_with_techniques: bool
    micro_batch: int
    n_devices: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("config", "memory")}
        out["config"] = self.config.to_dict()
        out["memory"] = self.memory.to_dict()
        out["memory_with_techniques"] = self.memory_with_techniques.to_dict()
        return out

    def summary(self) -> str:
        cfg = self.config
        gib = 2**30
        losses = ", ".join(f"{v:.3f} ({FITS[k].name})" for k, v in self.predicted_loss.items())
        optimal = "; ".join(
            f"{k}: N={v['n_params']:.3g}, D={v['tokens']:.3g}"
            for k, v in self.compute_optimal.items()
        )
        mem = self.memory
        lines = [
            f"Model {self.name}: {self.n_params / 1e6:.2f}M parameters "
            f"({self.n_params_non_embedding / 1e6:.2f}M non-embedding), {cfg.n_layer} layers x "
            f"{cfg.n_embd}, {cfg.n_head} heads, context {cfg.block_size}, "
            f"vocabulary {cfg.vocab_size}",
            f"Data: {self.train_tokens:.4g} training tokens ({self.tokens_per_param:.1f} per "
            f"parameter), {self.epochs:.2f} epochs over {self.tokens_available:.4g} available",
            f"Compute: {self.flops:.3g} FLOPs (6ND) of a {self.compute_budget_flops:.3g} budget",
            f"Predicted loss: {losses}",
            f"Compute-optimal at this budget: {optimal}",
            f"Memory per device (fp32, micro-batch {self.micro_batch}): weights "
            f"{mem.weights / gib:.2f} GiB, grads {mem.grads / gib:.2f} GiB, optimizer "
            f"{mem.optimizer / gib:.2f} GiB, activations {mem.activations / gib:.2f} GiB, "
            f"total {mem.total / gib:.2f} GiB",
        ]
        if self.memory_bytes is not None:
            usable = USABLE_MEMORY_FRACTION * self.memory_bytes / gib
            capacity = f"in {usable:.1f} GiB (the usable part of {self.memory_bytes / gib:.1f} GiB)"
            if self.fits_in_memory:
                lines.append(f"Fits {capacity} as is")
            else:
                verdict = "fits" if self.fits_with_techniques else "still does not fit"
                lines.append(
                    f"Does not fit {capacity}; with {', '.join(self.techniques)} it needs "
                    f"{self.memory_with_techniques.total / gib:.2f} GiB and {verdict}"
                )
        lines.extend(f"Note: {note}" for note in self.notes)
        return "\n".join(lines)


def plan_training(
    tokens_available: float,
    compute_flops: float,
    candidates: Mapping[str, GPTConfig] | Sequence[GPTConfig] | None = None,
    memory_bytes: float | None = None,
    *,
    vocab_size: int | None = None,
    block_size: int | None = None,
    n_devices: int = 1,
    micro_batch: int = 8,
    max_epochs: float = 4.0,
    tokens_per_param: float = TOKENS_PER_PARAM,
    allow_bf16: bool = True,
) -> TrainingPlan:
    """Pick a model size and token count for the data and compute actually available.

    The target size is the compute-optimal N of the tokens-per-parameter rule, capped at
    tokens_available / tokens_per_param so a small corpus does not get a model it cannot feed.
    The candidate closest to the target in log size that fits in memory (after the techniques
    it needs) is chosen, never one smaller than the smallest candidate. It trains on
    C / 6N tokens, at most max_epochs passes over the data: beyond ~4 epochs repeated tokens
    are worth little (Muennighoff et al. 2023), so extra compute is left unspent.
    """
    if tokens_available <= 0 or compute_flops <= 0:
        raise ValueError("tokens_available and compute_flops must be positive")
    if candidates is None:
        candidates = PRESETS
    named = (
        dict(candidates)
        if isinstance(candidates, Mapping)
        else {f"candidate-{i}": c for i, c in enumerate(candidates)}
    )
    if not named:
        raise ValueError("no candidate model configurations")
    overrides: dict[str, int] = {}
    if vocab_size is not None:
        overrides["vocab_size"] = vocab_size
    if block_size is not None:
        overrides["block_size"] = block_size
    configs = {name: replace(cfg, **overrides) for name, cfg in named.items()}
    ordered = sorted(configs, key=lambda name: count_params(configs[name]))

    n_rule, _ = tokens_per_param_rule(compute_flops, tokens_per_param)
    n_target = min(n_rule, tokens_available / tokens_per_param)
    fitting = {
        name: _techniques_to_fit(configs[name], memory_bytes, micro_batch, n_devices, allow_bf16)
        for name in ordered
    }
    notes: list[str] = []
    pool = [name for name in ordered if fitting[name][2]]
    if not pool:
        pool = ordered[:1]
        notes.append("no candidate fits in memory even with every technique; showing the smallest")
    name = min(pool, key=lambda n: abs(math.log(count_params(configs[n]) / n_target)))
    config = configs[name]
    n_params = count_params(config)
    if n_params > 2 * n_target:
        notes.append(
            f"{name} ({n_params:.3g} parameters) is larger than the {n_target:.3g} the data or "
            "compute supports, but no smaller candidate is available"
        )

    if n_params < n_target / 2:
        notes.append(
            f"{name} is smaller than the {n_target:.3g} parameters the compute supports; "
            "it trains on more tokens per parameter instead"
        )
    if not FIT_RANGE[0] <= n_params <= FIT_RANGE[1]:
        notes.append(
            "the loss fits were made on models of 70M to 16B parameters; the predicted loss "
            "for this size is an extrapolation"
        )

    train_tokens = min(compute_flops / (6.0 * n_params), max_epochs * tokens_available)
    epochs = train_tokens / tokens_available
    if epochs >= max_epochs:
        notes.append(f"data-bound: capped at {max_epochs:g} epochs; part of the compute is unused")
    fresh = effective_tokens(tokens_available, epochs)
    techniques, with_techniques, fits = fitting[name]
    memory = _config_memory(config, micro_batch, dtype_bytes=4)
    optimal = {"rule": tokens_per_param_rule(compute_flops, tokens_per_param)}
    optimal.update({key: compute_optimal(fit, compute_flops) for key, fit in FITS.items()})
    return TrainingPlan(
        name=name,
        config=config,
        n_params=n_params,
        n_params_non_embedding=count_params(config, non_embedding=True),
        tokens_available=float(tokens_available),
        train_tokens=train_tokens,
        epochs=epochs,
        tokens_per_param=train_tokens / n_params,
        compute_budget_flops=float(compute_flops),
        flops=6.0 * n_params * train_tokens,
        predicted_loss={k: predicted_loss(fit, n_params, fresh) for k, fit in FITS.items()},
        compute_optimal={k: {"n_params": n, "tokens": d} for k, (n, d) in optimal.items()},
        memory=memory,
        memory_bytes=memory_bytes,
        fits_in_memory=memory_bytes is None
        or memory.total <= USABLE_MEMORY_FRACTION * memory_bytes,
        techniques=techniques,
        memory_with_techniques=with_techniques,
        fits_with_techniques=fits,
        micro_batch=micro_batch,
        n_devices=n_devices,
        notes=notes,
    )
