"""Held-out loss, perplexity and bits per byte; checkpoint loading; sampling."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from model.data import iter_eval_windows
from model.gpt import GPT, GPTConfig


def batch_nll(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Summed negative log-likelihood (nats) of the targets in y, skipping targets of -1."""
    device = x.device
    autocast = (
        torch.autocast(device.type, dtype=dtype)
        if dtype is not None and dtype != torch.float32
        else contextlib.nullcontext()
    )
    with autocast:
        logits, _ = model(x)
    return F.cross_entropy(
        logits.float().flatten(0, 1), y.flatten(), ignore_index=-1, reduction="sum"
    )


@torch.no_grad()
def evaluate_lm(
    model: GPT,
    shard_paths: Sequence[str | Path],
    block_size: int,
    batch_size: int,
    token_byte_lengths: np.ndarray | None = None,
    max_windows: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Score every token of the shards once (or the first max_windows windows).

    Returns loss (mean nats per token), perplexity, tokens and, given the byte length of each
    token id, bytes and bits_per_byte: total NLL / ln 2 / UTF-8 bytes of the predicted tokens,
    which unlike loss compares fairly across tokenizers.
    """
    device = torch.device(device)
    lengths = None if token_byte_lengths is None else torch.as_tensor(token_byte_lengths)
    was_training = model.training
    model.eval()
    nll = 0.0
    n_tokens = 0
    n_bytes = 0
    try:
        for x, y in iter_eval_windows(shard_paths, block_size, batch_size, max_windows):
            x, y = x.to(device), y.to(device)
            nll += float(batch_nll(model, x, y, dtype))
            targets = y[y != -1].cpu()
            n_tokens += targets.numel()
            if lengths is not None:
                if int(targets.max()) >= lengths.numel():
                    raise ValueError(
                        f"token id {int(targets.max())} has no byte length: token_byte_lengths "
                        f"covers {lengths.numel()} ids"
                    )
                n_bytes += int(lengths[targets].sum())
    finally:
        model.train(was_training)
    if n_tokens == 0:
        raise ValueError(f"no tokens to evaluate in {[str(p) for p in shard_paths]}")
    return lm_metrics(nll, n_tokens, n_bytes if lengths is not None else None)


def lm_metrics(nll: float, n_tokens: int, n_bytes: int | None) -> dict[str, float]:
    """Loss, perplexity and (given the bytes the tokens stand for) bits per byte from a NLL sum."""
    loss = nll / n_tokens
    result: dict[str, float] = {
        "loss": loss,
        "perplexity": math.exp(loss),
        "tokens": n_tokens,
        "nll": nll,
    }
    if n_bytes is not None:
        result["bytes"] = n_bytes
        result["bits_per_byte"] = nll / math.log(2) / n_bytes if n_bytes else math.nan
    return result


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters.

    Printable Latin-1 bytes map to themselves; the other 68 (controls, space, and a few
    more) are shifted to code points from 256 up, so that every byte is one visible char.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


def token_byte_lengths_from_tokenizer(tokenizer: Tokenizer | str | Path) -> np.ndarray:
    """Raw bytes each token id of a byte-level BPE tokenizer stands for (special tokens: 0).

    In a byte-level vocabulary every character of a token is one byte, written through
    bytes_to_unicode. Added tokens that are not special are stored as plain text.
    """
    if not isinstance(tokenizer, Tokenizer):
        tokenizer = Tokenizer.from_file(str(tokenizer))
    byte_chars = set(bytes_to_unicode().values())
    added = tokenizer.get_added_tokens_decoder()
    lengths = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    for token, token_id in tokenizer.get_vocab(with_added_tokens=True).items():
        if token_id in added:
            special = added[token_id].special
            lengths[token_id] = 0 if special else len(added[token_id].content.encode("utf-8"))
            continue
        if not set(token) <= byte_chars:
            raise ValueError(
                f"token {token!r} (id {token_id}) is not made of byte-level characters; "
                "is this a byte-level BPE tokenizer?"
            )
        lengths[token_id] = len(token)
    return lengths


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[GPT, dict]:
    """The model of a checkpoint written by model.train, in eval mode, and the whole dict."""
    checkpoint = torch.load(Path(path), map_location=device, weights_only=True)
    model = GPT(GPTConfig.from_dict(checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model"])
    model.to(device).eval()
    return model, checkpoint


def _start_token(tokenizer: Tokenizer) -> int:
    specials = sorted(i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special)
    if not specials:
        raise ValueError("empty prompt and the tokenizer has no special token to start from")
    return specials[0]


@torch.no_grad()
def sample_continuations(
    model: GPT,
    tokenizer: Tokenizer | str | Path,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> list[str]:
    """The generated continuation (without the prompt) of each prompt.

    Each prompt gets its own generator seeded with `seed`, so a prompt's continuation does not
    depend on which other prompts are sampled with it.
    """
    if not isinstance(tokenizer, Tokenizer):
        tokenizer = Tokenizer.from_file(str(tokenizer))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    continuations = []
    try:
        for prompt in prompts:
            ids = tokenizer.encode(prompt).ids or [_start_token(tokenizer)]
            idx = torch.tensor([ids], dtype=torch.long, device=device)
            generator = torch.Generator(device=device).manual_seed(seed)
            out = model.generate(idx, max_new_tokens, temperature, top_k, generator)
            continuations.append(tokenizer.decode(out[0, len(ids) :].tolist()))
    finally:
        model.train(was_training)
    return continuations


@torch.no_grad()
def evaluate_token_stream(
    model: GPT,
    tokens: np.ndarray,
    batch_size: int,
    token_byte_lengths: np.ndarray | None = None,
    max_windows: int | None = None,
) -> dict[str, float]:
    """:func:`evaluate_lm` over one in-memory token stream, such as the validation documents
    of one source laid end to end: the same non-overlapping windows of the model's block size,
    the first max_windows of them."""
    block_size = model.config.block_size
    device = next(model.parameters()).device
    starts = list(range(0, max(tokens.size - 1, 0), block_size))[:max_windows]
    nll, n_tokens, n_bytes = 0.0, 0, 0
    was_training = model.training
    model.eval()
    try:
        for first in range(0, len(starts), batch_size):
            x = torch.zeros((len(starts[first : first + batch_size]), block_size), dtype=torch.long)
            y = torch.full_like(x, -1)
            for row, start in enumerate(starts[first : first + batch_size]):
                length = min(block_size, tokens.size - 1 - start)
                x[row, :length] = torch.from_numpy(tokens[start : start + length].astype(np.int64))
                y[row, :length] = torch.from_numpy(
                    tokens[start + 1 : start + 1 + length].astype(np.int64)
                )
            nll += float(batch_nll(model, x.to(device), y.to(device)))
            targets = y[y != -1]
            n_tokens += targets.numel()
            if token_byte_lengths is not None:
                n_bytes += int(token_byte_lengths[targets.numpy()].sum())
    finally:
        model.train(was_training)
    if n_tokens == 0:
        raise ValueError("no tokens to evaluate: the stream needs at least two tokens")
    return lm_metrics(nll, n_tokens, n_bytes if token_byte_lengths is not None else None)
