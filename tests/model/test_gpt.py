from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from model.gpt import GPT, PRESETS, GPTConfig, apply_rope, count_params, preset, rope_cache

TINY = preset("tiny", vocab_size=256, block_size=32)


@pytest.fixture
def tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(TINY)


def test_parameter_count_matches_the_formula_and_presets_are_sized_as_named() -> None:
    model = GPT(PRESETS["tiny"])
    assert model.num_params() == count_params(PRESETS["tiny"])
    assert model.num_params(non_embedding=True) == count_params(PRESETS["tiny"], non_embedding=True)
    assert 0.5e6 < count_params(PRESETS["tiny"]) < 2e6
    assert 2e6 < count_params(PRESETS["small-cpu"]) < 10e6
    assert 115e6 < count_params(PRESETS["gpt2-small"]) < 135e6
    assert 330e6 < count_params(PRESETS["gpt2-medium"]) < 380e6


def test_swiglu_width_is_eight_thirds_rounded_to_the_multiple() -> None:
    assert GPTConfig(n_embd=768, n_head=12).hidden_dim == 2048
    assert GPTConfig(n_embd=128, n_head=4).hidden_dim == 384  # 341.3 rounded up to 64s
    assert GPTConfig(n_embd=128, n_head=4, mlp_hidden=100).hidden_dim == 100


def test_config_rejects_heads_that_do_not_divide_the_width() -> None:
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=100, n_head=3)
    with pytest.raises(KeyError, match="unknown model preset"):
        preset("huge")
    with pytest.raises(ValueError, match="unknown GPTConfig fields"):
        GPTConfig.from_dict({"n_layers": 2})


def test_no_biases_and_tied_embeddings(tiny_model: GPT) -> None:
    for module in tiny_model.modules():
        if isinstance(module, nn.Linear):
            assert module.bias is None
    assert tiny_model.lm_head.weight is tiny_model.tok_emb.weight
    assert sum(isinstance(m, nn.RMSNorm) for m in tiny_model.modules()) == 2 * TINY.n_layer + 1


def test_output_projections_use_the_scaled_residual_init(tiny_model: GPT) -> None:
    expected = 0.02 / math.sqrt(2 * TINY.n_layer)
    for block in tiny_model.blocks:
        for weight in (block.attn.proj.weight, block.mlp.down.weight):
            assert weight.std().item() == pytest.approx(expected, rel=0.05)
        assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_forward_shapes_and_initial_loss_near_uniform(tiny_model: GPT) -> None:
    idx = torch.randint(0, TINY.vocab_size, (3, TINY.block_size))
    logits, loss = tiny_model(idx)
    assert logits.shape == (3, TINY.block_size, TINY.vocab_size)
    assert loss is None
    targets = torch.randint(0, TINY.vocab_size, (3, TINY.block_size))
    _, loss = tiny_model(idx, targets)
    assert loss.item() == pytest.approx(math.log(TINY.vocab_size), abs=0.1)


def test_targets_of_minus_one_are_ignored(tiny_model: GPT) -> None:
    idx = torch.randint(0, TINY.vocab_size, (2, 16))
    targets = torch.randint(0, TINY.vocab_size, (2, 16))
    _, full = tiny_model(idx[:, :10], targets[:, :10])
    padded = targets.clone()
    padded[:, 10:] = -1
    _, masked = tiny_model(idx, padded)
    torch.testing.assert_close(full, masked)


def test_attention_is_causal(tiny_model: GPT) -> None:
    idx = torch.randint(0, TINY.vocab_size, (1, 20))
    changed = idx.clone()
    changed[0, 12] = (changed[0, 12] + 1) % TINY.vocab_size
    before, _ = tiny_model(idx)
    after, _ = tiny_model(changed)
    torch.testing.assert_close(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_sequences_longer_than_the_block_are_rejected(tiny_model: GPT) -> None:
    with pytest.raises(ValueError, match="block_size"):
        tiny_model(torch.zeros(1, TINY.block_size + 1, dtype=torch.long))


def test_rotary_scores_depend_only_on_relative_position() -> None:
    head_dim = 16
    cos, sin = rope_cache(head_dim, 64, 10_000.0)
    q = torch.randn(head_dim)
    k = torch.randn(head_dim)

    def score(m: int, n: int) -> float:
        qm = apply_rope(q.view(1, 1, 1, -1), cos[m : m + 1], sin[m : m + 1])
        kn = apply_rope(k.view(1, 1, 1, -1), cos[n : n + 1], sin[n : n + 1])
        return float((qm * kn).sum())

    assert score(5, 2) == pytest.approx(score(40, 37), rel=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 4), rel=1e-3)
    # A rotation keeps the norm.
    rotated = apply_rope(q.view(1, 1, 1, -1), cos[9:10], sin[9:10])
    assert rotated.norm().item() == pytest.approx(q.norm().item(), rel=1e-5)


def test_optimizer_decays_matrices_only(tiny_model: GPT) -> None:
    optimizer = tiny_model.configure_optimizer(0.1, 1e-3, (0.9, 0.95), "cpu")
    assert isinstance(optimizer, torch.optim.AdamW)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    grouped = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
    assert grouped == tiny_model.num_params()


def test_flops_per_token_is_six_n_plus_attention(tiny_model: GPT) -> None:
    attention = 12 * TINY.n_layer * TINY.n_embd * TINY.block_size
    assert tiny_model.estimate_flops_per_token() == 6 * tiny_model.num_params() + attention


def test_generate_is_deterministic_and_crops_long_contexts(tiny_model: GPT) -> None:
    prompt = torch.randint(0, TINY.vocab_size, (2, 5))
    greedy = tiny_model.generate(prompt, 40, temperature=0.0)
    assert greedy.shape == (2, 45)
    assert torch.equal(greedy[:, :5], prompt)
    assert torch.equal(greedy, tiny_model.generate(prompt, 40, top_k=1))

    def sample(seed: int) -> torch.Tensor:
        return tiny_model.generate(
            prompt, 10, temperature=1.0, top_k=50, generator=torch.Generator().manual_seed(seed)
        )

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))


def test_top_k_restricts_sampling_to_the_k_most_likely(tiny_model: GPT) -> None:
    prompt = torch.randint(0, TINY.vocab_size, (1, 8))
    logits, _ = tiny_model(prompt)
    allowed = set(torch.topk(logits[0, -1], 3).indices.tolist())
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        out = tiny_model.generate(prompt, 1, temperature=2.0, top_k=3, generator=generator)
        assert out[0, -1].item() in allowed


def test_the_model_learns_a_repeating_sequence(tiny_model: GPT) -> None:
    pattern = torch.randint(0, TINY.vocab_size, (12,))
    data = pattern.repeat(4)[: TINY.block_size + 1].unsqueeze(0).repeat(4, 1)
    x, y = data[:, :-1], data[:, 1:]
    optimizer = tiny_model.configure_optimizer(0.0, 3e-3, (0.9, 0.95), "cpu")
    _, first = tiny_model(x, y)
    for _ in range(40):
        _, loss = tiny_model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # Only the first 12 positions are unpredictable; the rest repeat what came before.
    assert loss.item() < first.item() / 2
