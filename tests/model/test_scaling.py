from __future__ import annotations

import itertools
import json
import math

import pytest

from model.gpt import PRESETS, count_params, preset
from model.scaling import (
    EPOCH_2024,
    HOFFMANN_2022,
    compute_budget,
    compute_optimal,
    effective_tokens,
    memory_estimate,
    plan_training,
    predicted_loss,
    tokens_per_param_rule,
)

CHINCHILLA_FLOPS = 5.76e23  # Chinchilla: 70B parameters on 1.4T tokens
GIB = 2**30


def test_twenty_tokens_per_parameter_reproduces_chinchilla() -> None:
    n, d = tokens_per_param_rule(CHINCHILLA_FLOPS)
    assert n == pytest.approx(70e9, rel=0.02)
    assert d == pytest.approx(1.4e12, rel=0.02)
    assert d / n == pytest.approx(20)
    assert 6 * n * d == pytest.approx(CHINCHILLA_FLOPS)


@pytest.mark.parametrize("fit", [HOFFMANN_2022, EPOCH_2024])
def test_compute_optimal_spends_the_budget_and_minimises_the_loss(fit) -> None:
    for budget in (1e18, 1e21, CHINCHILLA_FLOPS):
        n, d = compute_optimal(fit, budget)
        assert 6 * n * d == pytest.approx(budget, rel=1e-9)
        best = predicted_loss(fit, n, d)
        for factor in (0.8, 1.25, 0.5, 2.0):
            assert predicted_loss(fit, n * factor, d / factor) > best


def test_hoffmann_fit_at_chinchilla_compute() -> None:
    # The paper's approach-3 constants put the optimum in the tens of billions of parameters
    # (below approaches 1 and 2), with more tokens per parameter than 20.
    n, d = compute_optimal(HOFFMANN_2022, CHINCHILLA_FLOPS)
    assert 1e10 < n < 1e11
    assert 20 < d / n < 200


def test_epoch_fit_at_chinchilla_compute_is_near_twenty_tokens_per_parameter() -> None:
    n, d = compute_optimal(EPOCH_2024, CHINCHILLA_FLOPS)
    assert 50e9 < n < 100e9
    assert 10 < d / n < 30


def test_optimal_size_grows_with_compute() -> None:
    sizes = [compute_optimal(HOFFMANN_2022, c)[0] for c in (1e18, 1e20, 1e22)]
    assert sizes == sorted(sizes)


@pytest.mark.parametrize("fit", [HOFFMANN_2022, EPOCH_2024])
def test_predicted_loss_falls_with_parameters_and_tokens_toward_e(fit) -> None:
    grid = [1e6, 1e8, 1e10, 1e12]
    for d in grid:
        losses = [predicted_loss(fit, n, d) for n in grid]
        assert all(a > b for a, b in itertools.pairwise(losses))
    for n in grid:
        losses = [predicted_loss(fit, n, d) for d in grid]
        assert all(a > b for a, b in itertools.pairwise(losses))
    assert predicted_loss(fit, 1e30, 1e30) == pytest.approx(fit.E, abs=1e-3)


def test_chinchilla_predicted_loss() -> None:
    # 1.69 + 406.4 / 70e9^0.34 + 410.7 / 1.4e12^0.28
    assert predicted_loss(HOFFMANN_2022, 70e9, 1.4e12) == pytest.approx(1.937, abs=0.005)


def test_compute_budget() -> None:
    assert compute_budget(8, 1.0, 1e15, 0.5) == pytest.approx(8 * 3600 * 1e15 * 0.5)


def test_repeated_tokens_are_worth_less_each_epoch() -> None:
    assert effective_tokens(1e9, 0.5) == pytest.approx(0.5e9)
    assert effective_tokens(1e9, 1.0) == pytest.approx(1e9)
    four = effective_tokens(1e9, 4.0)
    assert 3.5e9 < four < 4e9
    assert effective_tokens(1e9, 1_000.0) < 17e9


def test_memory_estimate_for_a_7b_model_with_adamw() -> None:
    cfg = PRESETS["llama-7b"]
    n = count_params(cfg)
    args = (n, cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.block_size)
    one = memory_estimate(*args, micro_batch=1, vocab_size=cfg.vocab_size)
    assert one.weights == 4 * n and one.grads == 4 * n and one.optimizer == 8 * n
    assert one.total > 80 * GIB  # the states alone are 16 bytes per parameter
    two = memory_estimate(*args, micro_batch=2, vocab_size=cfg.vocab_size)
    assert two.activations == pytest.approx(2 * one.activations)
    checkpointed = memory_estimate(
        *args, micro_batch=1, vocab_size=cfg.vocab_size, activation_checkpointing=True
    )
    assert checkpointed.activations < one.activations / 5
    sharded = memory_estimate(*args, micro_batch=1, vocab_size=cfg.vocab_size, shard_over=8)
    assert sharded.weights + sharded.grads + sharded.optimizer == pytest.approx(16 * n / 8)
    assert memory_estimate(*args, 1, flash_attention=False).activations > one.activations
    assert memory_estimate(*args, 1, optimizer="sgd").optimizer == 4 * n
    with pytest.raises(ValueError, match="optimizer"):
        memory_estimate(*args, 1, optimizer="lion")


def test_plan_for_the_tiny_cpu_sample_picks_the_smallest_model() -> None:
    plan = plan_training(
        tokens_available=2e6, compute_flops=1e15, vocab_size=4096, memory_bytes=16 * GIB
    )
    assert plan.name == "tiny"
    assert plan.n_params == count_params(preset("tiny", vocab_size=4096))
    assert plan.config.vocab_size == 4096
    assert plan.train_tokens <= 4 * 2e6
    assert plan.flops == pytest.approx(6 * plan.n_params * plan.train_tokens)
    assert plan.flops <= 1e15
    assert plan.fits_in_memory and plan.techniques == []
    assert set(plan.predicted_loss) == {"hoffmann_2022", "epoch_2024"}
    assert "tiny" in plan.summary()
    json.dumps(plan.to_dict())


def test_plan_caps_the_model_at_what_the_data_can_feed() -> None:
    # A huge budget but only 1e8 tokens: about 5M parameters, trained for 4 epochs at most.
    plan = plan_training(tokens_available=1e8, compute_flops=1e21, vocab_size=8192)
    assert plan.name == "small-cpu"
    assert plan.epochs == pytest.approx(4.0)
    assert plan.train_tokens == pytest.approx(4e8)
    assert any("epochs" in note for note in plan.notes)
    # The repeated epochs count for less than fresh data would.
    fresh_loss = predicted_loss(HOFFMANN_2022, plan.n_params, 4e8)
    assert plan.predicted_loss["hoffmann_2022"] > fresh_loss


def test_plan_is_compute_optimal_when_data_is_plentiful() -> None:
    n = count_params(preset("gpt2-small", vocab_size=50_304))
    budget = 6 * n * 20 * n
    plan = plan_training(tokens_available=1e12, compute_flops=budget, vocab_size=50_304)
    assert plan.name == "gpt2-small"
    assert plan.tokens_per_param == pytest.approx(20, rel=1e-6)
    assert plan.epochs < 1


def test_plan_lists_the_techniques_a_large_model_needs() -> None:
    budget = compute_budget(gpus=8, hours=24 * 14, peak_flops=989e12, mfu=0.4)
    plan = plan_training(2e12, budget, memory_bytes=80e9, n_devices=8, vocab_size=32_000)
    assert plan.name == "llama-7b"
    assert not plan.fits_in_memory
    assert plan.techniques[-1] == "ZeRO/FSDP sharding"
    assert plan.fits_with_techniques
    assert plan.memory_with_techniques.total < 0.9 * 80e9 < plan.memory.total
    assert "ZeRO/FSDP sharding" in plan.summary()
    # On one GPU the 7B states cannot be sharded, so a smaller model that fits is chosen.
    single = plan_training(2e12, budget, memory_bytes=80e9, n_devices=1, vocab_size=32_000)
    assert single.name != "llama-7b"
    assert single.fits_with_techniques


def test_plan_accepts_a_list_of_configs() -> None:
    candidates = [preset("small-cpu"), preset("tiny")]
    plan = plan_training(1e5, 1e14, candidates, block_size=64)
    assert plan.config.n_embd == PRESETS["tiny"].n_embd
    assert plan.config.block_size == 64
    with pytest.raises(ValueError):
        plan_training(0, 1e14)
    assert math.isfinite(plan.predicted_loss["epoch_2024"])
