"""A LLaMA-style decoder-only transformer in one file.

Token embedding, pre-norm blocks of (RMSNorm, causal self-attention with rotary position
embeddings) and (RMSNorm, SwiGLU MLP), a final RMSNorm and an output projection tied to the
token embedding. No biases anywhere. Attention goes through ``F.scaled_dot_product_attention``,
which picks flash or memory-efficient kernels on GPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 50_304
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    # SwiGLU hidden width; None means 8/3 * n_embd rounded up to a multiple of `multiple_of`,
    # which keeps the MLP's parameter count close to a 4x GELU MLP.
    mlp_hidden: int | None = None
    multiple_of: int = 64
    dropout: float = 0.0
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError("the head dimension must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def hidden_dim(self) -> int:
        if self.mlp_hidden is not None:
            return self.mlp_hidden
        hidden = int(8 * self.n_embd / 3)
        return self.multiple_of * math.ceil(hidden / self.multiple_of)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GPTConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown GPTConfig fields: {sorted(unknown)}")
        return cls(**values)


PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(vocab_size=4096, block_size=128, n_layer=2, n_head=4, n_embd=128),
    "small-cpu": GPTConfig(vocab_size=8192, block_size=256, n_layer=4, n_head=4, n_embd=256),
    "gpt2-small": GPTConfig(n_layer=12, n_head=12, n_embd=768),
    "gpt2-medium": GPTConfig(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-large": GPTConfig(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-xl": GPTConfig(n_layer=48, n_head=25, n_embd=1600),
    # LLaMA-7B's shape; with tied embeddings it has ~6.6B parameters rather than 6.7B.
    "llama-7b": GPTConfig(
        vocab_size=32_000, block_size=4096, n_layer=32, n_head=32, n_embd=4096, mlp_hidden=11_008
    ),
}


def preset(name: str, **overrides: Any) -> GPTConfig:
    """A named preset with some fields replaced, e.g. ``preset("tiny", vocab_size=8000)``."""
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def count_params(config: GPTConfig, non_embedding: bool = False) -> int:
    """Parameter count computed from the config alone, without building the model."""
    d, h = config.n_embd, config.hidden_dim
    per_layer = 4 * d * d + 3 * d * h + 2 * d  # qkv + out projection, SwiGLU, two norms
    total = config.n_layer * per_layer + d  # final norm
    if not non_embedding:
        total += config.vocab_size * d  # one matrix, shared by embedding and output
    return total


def rope_cache(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles, each (length, head_dim / 2), in float32."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[i], x[i + head_dim/2]) of x (batch, heads, time, head_dim) by position."""
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.type_as(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, time, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=2)
        q, k, v = (
            t.view(batch, time, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v)
        )
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(y.transpose(1, 2).reshape(batch, time, channels))


class SwiGLU(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(config.n_embd, config.hidden_dim, bias=False)
        self.up = nn.Linear(config.n_embd, config.hidden_dim, bias=False)
        self.down = nn.Linear(config.hidden_dim, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    """One pre-norm transformer layer.

    With ``checkpoint_activations`` set (see model.parallel.set_activation_checkpointing) the
    block keeps only its input during training and recomputes its activations in the backward
    pass: less memory for one more forward. A flag rather than a wrapper module, so parameter
    names, and therefore checkpoints, stay the same either way.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.checkpoint_activations = False
        self.attn_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.attn = CausalSelfAttention(config)
        self.mlp_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.mlp = SwiGLU(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        if self.checkpoint_activations and self.training and torch.is_grad_enabled():
            # Non-reentrant: works with inputs that need no grad, and replays the RNG state,
            # so dropout masks match in the recomputation.
            return checkpoint(self._forward, x, cos, sin, use_reentrant=False)
        return self._forward(x, cos, sin)

    def _forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.attn_norm(x), cos, sin))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight
        cos, sin = rope_cache(config.head_dim, config.block_size, config.rope_theta)
        # Derived from the config, so not saved in checkpoints.
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # Residual-stream output projections start smaller so the variance of the residual
        # stream does not grow with depth (GPT-2's scaled initialisation).
        residual_std = 0.02 / math.sqrt(2 * config.n_layer)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.mlp.down.weight, mean=0.0, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (batch, time, vocab) and, given targets, the mean cross-entropy.

        Targets equal to -1 are ignored, which lets callers pad a ragged last window.
        """
        time = idx.size(1)
        if time > self.config.block_size:
            raise ValueError(
                f"sequence of {time} tokens exceeds block_size {self.config.block_size}"
            )
        cos, sin = self.rope_cos[:time], self.rope_sin[:time]
        x = self.dropout(self.tok_emb(idx))
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.lm_head(self.norm(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1
            )
        return logits, loss

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, counting the tied embedding/output matrix once (or not at all)."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.tok_emb.weight.numel()
        return total

    def estimate_flops_per_token(self) -> float:
        """Training FLOPs per token: 6N for the matmuls plus the attention score term.

        Follows the PaLM appendix: 6 * N + 12 * n_layer * n_head * head_dim * block_size, where
        N includes the output projection (the tied embedding) because it is a real matmul.
        """
        cfg = self.config
        attention = 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * cfg.block_size
        return 6 * self.num_params() + attention

    def configure_optimizer(
        self,
        weight_decay: float,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.95),
        device_type: str = "cpu",
    ) -> torch.optim.AdamW:
        """AdamW that decays matrices (embeddings, projections) but not norm gains."""
        return configure_adamw(self, weight_decay, lr, betas, device_type)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Extend idx (batch, time) by sampling; temperature <= 0 means greedy decoding.

        The context is cropped to the last block_size tokens; rotary embeddings are relative,
        so the cropped window is scored as if it started at position 0 without harm.
        """
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size :]
            logits = self(context)[0][:, -1, :].float()
            if temperature <= 0:
                next_token = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1)
                next_token = torch.multinomial(probs, num_samples=1, generator=generator)
            idx = torch.cat([idx, next_token], dim=1)
        return idx


def configure_adamw(
    module: nn.Module,
    weight_decay: float,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.95),
    device_type: str = "cpu",
) -> torch.optim.AdamW:
    """AdamW over a module's parameters (a GPT, or one pipeline stage of it) that decays
    matrices (embeddings, projections) but not norm gains."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device_type == "cuda" and torch.cuda.is_available()
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)
