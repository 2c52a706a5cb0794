from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, models

from model.evaluate import (
    bytes_to_unicode,
    evaluate_lm,
    load_checkpoint,
    sample_continuations,
    token_byte_lengths_from_tokenizer,
)
from model.gpt import GPT, preset
from model.shards import read_tokens
from model.train import TrainConfig, train

from .conftest import EOS, MakeShard


@pytest.fixture(scope="module")
def model(byte_tokenizer: Tokenizer) -> GPT:
    torch.manual_seed(0)
    return GPT(preset("tiny", vocab_size=byte_tokenizer.get_vocab_size(), block_size=64))


def test_bytes_to_unicode_is_a_printable_bijection() -> None:
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ"


def test_token_byte_lengths_add_up_to_the_text_bytes(byte_tokenizer: Tokenizer) -> None:
    lengths = token_byte_lengths_from_tokenizer(byte_tokenizer)
    assert lengths.shape == (byte_tokenizer.get_vocab_size(),)
    assert lengths[byte_tokenizer.token_to_id(EOS)] == 0
    assert lengths.min() == 0 and (lengths[lengths > 0] >= 1).all()
    for text in ["Alice was beginning to get very tired", "naïve café — “quoted” 日本語 🙂\n\t"]:
        ids = byte_tokenizer.encode(text).ids
        assert int(lengths[ids].sum()) == len(text.encode("utf-8"))
    with_eos = byte_tokenizer.encode(f"the end{EOS}").ids
    assert int(lengths[with_eos].sum()) == len(b"the end")


def test_token_byte_lengths_from_a_saved_tokenizer(
    byte_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    path = tmp_path / "tokenizer.json"
    byte_tokenizer.save(str(path))
    saved = token_byte_lengths_from_tokenizer(path)
    np.testing.assert_array_equal(saved, token_byte_lengths_from_tokenizer(byte_tokenizer))


def test_a_tokenizer_that_is_not_byte_level_is_refused() -> None:
    sentencepiece_like = Tokenizer(models.WordLevel({"▁hello": 0, "x": 1}, unk_token="x"))
    with pytest.raises(ValueError, match="byte-level"):
        token_byte_lengths_from_tokenizer(sentencepiece_like)


def test_a_uniform_model_scores_log_vocab_per_token(
    byte_tokenizer: Tokenizer, alice_shards: tuple[Path, Path], alice_text: str
) -> None:
    vocab = byte_tokenizer.get_vocab_size()
    uniform = GPT(preset("tiny", vocab_size=vocab, block_size=64))
    with torch.no_grad():
        for parameter in uniform.parameters():
            parameter.zero_()  # zero embeddings give zero logits everywhere
    lengths = token_byte_lengths_from_tokenizer(byte_tokenizer)
    _, val = alice_shards
    result = evaluate_lm(uniform, [val], 64, 16, lengths)

    tokens = np.asarray(read_tokens(val))
    assert result["tokens"] == tokens.size - 1
    assert result["bytes"] == int(lengths[tokens[1:]].sum())
    # The shard's bytes are the paragraphs' bytes: Alice's text is in there verbatim.
    first_paragraph = byte_tokenizer.decode(tokens[: np.argmax(tokens == 0)].tolist())
    assert first_paragraph in alice_text
    assert result["loss"] == pytest.approx(math.log(vocab), rel=1e-5)
    assert result["perplexity"] == pytest.approx(vocab, rel=1e-4)
    expected_bpb = math.log(vocab) * result["tokens"] / math.log(2) / result["bytes"]
    assert result["bits_per_byte"] == pytest.approx(expected_bpb, rel=1e-5)


def test_evaluation_equals_a_direct_forward_pass(model: GPT, make_shard: MakeShard) -> None:
    tokens = np.random.default_rng(0).integers(0, model.config.vocab_size, 150)
    path = make_shard("v.bin", [tokens], model.config.vocab_size)
    # 149 predictions: windows of 64, 64 and a padded 21.
    result = evaluate_lm(model, [path], block_size=64, batch_size=2)
    expected = 0.0
    with torch.no_grad():
        for start in range(0, 149, 64):
            x = torch.as_tensor(tokens[start : min(start + 64, 149)]).unsqueeze(0)
            y = torch.as_tensor(tokens[start + 1 : min(start + 65, 150)])
            logits, _ = model(x)
            expected += F.cross_entropy(logits[0], y, reduction="sum").item()
    assert result["tokens"] == 149
    assert result["nll"] == pytest.approx(expected, rel=1e-5)
    assert "bits_per_byte" not in result
    assert evaluate_lm(model, [path], 64, 1)["loss"] == pytest.approx(result["loss"], rel=1e-5)


def test_max_windows_limits_the_evaluation(model: GPT, alice_shards: tuple[Path, Path]) -> None:
    result = evaluate_lm(model, [alice_shards[1]], 64, 4, max_windows=3)
    assert result["tokens"] == 3 * 64


def test_byte_lengths_must_cover_the_vocabulary(model: GPT, make_shard: MakeShard) -> None:
    path = make_shard("v.bin", [np.arange(100)], model.config.vocab_size)
    with pytest.raises(ValueError, match="no byte length"):
        evaluate_lm(model, [path], 64, 4, np.ones(50, dtype=np.int64))


def test_trained_checkpoint_loads_and_reproduces_the_validation_loss(
    byte_tokenizer: Tokenizer, alice_shards: tuple[Path, Path], tmp_path: Path
) -> None:
    train_path, val_path = alice_shards
    config = TrainConfig(
        train_shards=[str(train_path)],
        val_shards=[str(val_path)],
        out_dir=str(tmp_path),
        block_size=64,
        batch_size=8,
        max_steps=40,
        lr=1e-2,
        warmup_steps=2,
        eval_interval=0,
        eval_batches=3,
    )
    summary = train(config)
    model, checkpoint = load_checkpoint(summary["checkpoint"])
    assert checkpoint["step"] == 40 and not model.training
    lengths = token_byte_lengths_from_tokenizer(byte_tokenizer)
    result = evaluate_lm(model, [val_path], 64, 8, lengths, max_windows=3 * 8)
    assert result["loss"] == pytest.approx(summary["val_loss"], rel=1e-5)
    # Forty steps on English already beat a uniform guess over the 512 tokens.
    uniform = math.log(byte_tokenizer.get_vocab_size())
    assert result["loss"] < uniform - 0.7
    uniform_bpb = uniform / math.log(2) * result["tokens"] / result["bytes"]
    assert 0 < result["bits_per_byte"] < 0.9 * uniform_bpb


def test_sampling_is_deterministic_given_the_seed(model: GPT, byte_tokenizer: Tokenizer) -> None:
    prompts = ["Alice was", ""]
    first = sample_continuations(model, byte_tokenizer, prompts, 20, temperature=1.0, seed=3)
    assert len(first) == 2 and all(isinstance(text, str) and text for text in first)
    assert first == sample_continuations(model, byte_tokenizer, prompts, 20, seed=3)
    assert first != sample_continuations(model, byte_tokenizer, prompts, 20, seed=4)
    # A prompt's continuation does not depend on the other prompts.
    assert sample_continuations(model, byte_tokenizer, prompts[:1], 20, seed=3) == first[:1]
    greedy = sample_continuations(model, byte_tokenizer, prompts, 10, temperature=0, seed=0)
    assert greedy == sample_continuations(model, byte_tokenizer, prompts, 10, temperature=0, seed=9)
