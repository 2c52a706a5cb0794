"""The exported folder loads in transformers as a Llama and computes lmforge's logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from model.export import export_llama, main
from model.gpt import GPT, GPTConfig
from model.train import save_checkpoint

from .conftest import EOS

transformers = pytest.importorskip("transformers")

# Odd sizes on purpose: a non-default theta and eps, and an MLP width that is not 8/3 * d.
CONFIG = GPTConfig(
    vocab_size=576,
    block_size=64,
    n_layer=2,
    n_head=4,
    n_embd=64,
    mlp_hidden=160,
    rope_theta=500_000.0,
    norm_eps=1e-6,
)


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[GPT, Path]:
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    with torch.no_grad():  # norm gains away from 1, so a misplaced norm weight shows
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": model.state_dict(), "model_config": CONFIG.to_dict()})
    return model, path


def test_transformers_llama_gives_the_same_logits(
    checkpoint: tuple[GPT, Path], byte_tokenizer: Tokenizer, tmp_path: Path
) -> None:
    model, path = checkpoint
    tokenizer_path = tmp_path / "tokenizer.json"
    byte_tokenizer.save(str(tokenizer_path))
    out = export_llama(path, tmp_path / "hf", tokenizer_path)

    hf_model = transformers.LlamaForCausalLM.from_pretrained(out).eval()
    assert hf_model.config.tie_word_embeddings
    assert hf_model.lm_head.weight.data_ptr() == hf_model.model.embed_tokens.weight.data_ptr()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    text = "Alice was beginning to get very tired of sitting by her sister on the bank"
    ids = hf_tokenizer(text)["input_ids"]
    assert ids == byte_tokenizer.encode(text).ids
    assert hf_tokenizer.eos_token == EOS
    assert hf_model.config.eos_token_id == byte_tokenizer.token_to_id(EOS)

    x = torch.tensor([ids, ids[::-1]])
    with torch.no_grad():
        ours = model(x)[0]
        theirs = hf_model(x).logits
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)


def test_cli_exports_bfloat16_without_a_tokenizer(
    checkpoint: tuple[GPT, Path], tmp_path: Path
) -> None:
    _, path = checkpoint
    assert (
        main(["--checkpoint", str(path), "--out", str(tmp_path / "hf"), "--dtype", "bfloat16"]) == 0
    )
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["torch_dtype"] == "bfloat16"
    assert config["rope_theta"] == 500_000.0 and config["rms_norm_eps"] == 1e-6
    assert config["intermediate_size"] == 160
    assert not (tmp_path / "hf" / "tokenizer.json").exists()
    hf_model = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "hf")
    assert hf_model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
