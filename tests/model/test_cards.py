"""Model and dataset cards rendered from a release record (no Dagster, no files)."""

from __future__ import annotations

import copy
import math

import pytest

from model.cards import (
    human,
    is_demo_scale,
    natural_languages,
    number,
    render_dataset_card,
    render_model_card,
)

LINEAGE = [
    {"asset": "gutenberg_books", "partition": "_all", "version": "aaa1", "upstream": {}},
    {
        "asset": "book_documents",
        "partition": "_all",
        "version": "bbb2",
        "code_version": "3",
        "created_at": "2026-01-02T03:04:05.678+00:00",
        "upstream": {"gutenberg_books/_all": "aaa1"},
    },
]


def record(n_params: int = 688_768, tokens: int = 237_568) -> dict:
    return {
        "name": "demo-model",
        "license": "apache-2.0",
        "model": {
            "architecture": "LlamaForCausalLM",
            "parameters": n_params,
            "parameters_non_embedding": n_params // 2,
            "layers": 2,
            "heads": 4,
            "hidden_size": 128,
            "intermediate_size": 384,
            "context_length": 128,
            "vocab_size": 2048,
            "rope_theta": 10000.0,
            "export_dtype": "bfloat16",
        },
        "training": {
            "preset": "tiny",
            "steps": 232,
            "tokens_trained": tokens,
            "compute_flops": 6 * n_params * tokens,
            "device": "cpu",
            "plan_notes": ["data-bound: capped at 4 epochs"],
        },
        "evaluation": {
            "report_version": "eval123",
            "validation": {
                "loss": 6.2548,
                "perplexity": 520.52,
                "bits_per_byte": 2.7803,
                "tokens": 973,
            },
            "compression_baselines_bits_per_byte": {"gzip": 3.7784},
            "predicted_loss": {"hoffmann_2022": 18.6523, "epoch_2024": math.nan},
            "tasks": {
                "hellaswag": {
                    "kind": "multiple_choice",
                    "items": 50,
                    "fewshot": 0,
                    "metrics": {"acc_norm": 0.26},
                    "centered": -0.0133,
                }
            },
            "core": {"score": -0.0133, "tasks": 1},
        },
        "hf_perplexity": {"skipped": "transformers is not installed"},
        "corpus": {
            "version": "corpus9",
            "documents": 20,
            "text_bytes": 123_456,
            "inputs": [],
            "filters": [
                {
                    "source": "books",
                    "asset": "book_documents",
                    "filter": "length",
                    "documents": 7,
                    "reasons": {"a": 3, "b": 2, "c": 1, "d": 1},
                },
            ],
            "dedup": {
                "per_source": {
                    "books": {"input": 12, "exact_removed": 1, "near_removed": 1, "kept": 10}
                }
            },
            "licenses": {"books": {"Public domain in the USA.": 10}, "code": {"MIT": 10}},
            "languages": {"books": {"en": 9, "und": 1}, "code": {"python": 10}},
            "tokens": {},
        },
        "lineage": LINEAGE,
    }


def test_a_tiny_model_is_called_a_demo_and_shows_its_numbers() -> None:
    card = render_model_card(record())
    assert card.startswith('---\nlicense: "apache-2.0"\nlibrary_name: "transformers"\n')
    assert '\nlanguage: ["en"]\n' in card  # python and und are not natural languages
    assert '"demo", "tiny"' in card
    assert "**This is a tiny demonstration model** (689K parameters trained on 238K tokens)" in card
    assert "| Parameters | 688,768 (689K) |" in card
    assert "| Exported weights | bfloat16 |" in card
    assert "| Training compute (6·N·D) | 982B FLOPs |" in card
    assert "| validation loss (nats/token) | 6.2548 |" in card
    assert "| gzip bits per byte (same text) | 3.7784 |" in card
    assert "| Chinchilla-predicted loss, epoch_2024 fit | — |" in card  # nan shown as missing
    assert "CORE score -0.0133 over 1 CORE tasks" in card
    assert "| hellaswag | multiple_choice | 50 | 0 | acc_norm 0.260 | -0.013 |" in card
    assert "Independent check with transformers skipped: transformers is not installed." in card
    assert "- Plan note: data-bound: capped at 4 epochs" in card
    assert (
        "| book_documents | _all | `bbb2` | 3 | 2026-01-02T03:04:05 | gutenberg_books/_all `aaa1` |"
        in card
    )
    assert card.endswith("\n") and not card.endswith("\n\n")


def test_a_large_model_is_not_called_a_demo() -> None:
    assert not is_demo_scale(7_000_000_000, 2_000_000_000_000)
    assert is_demo_scale(7_000_000_000, 1_000)  # big but barely trained
    card = render_model_card(record(n_params=7_000_000_000, tokens=2_000_000_000_000))
    assert "demonstration" not in card and '"tiny"' not in card
    assert "| Parameters | 7,000,000,000 (7B) |" in card


def test_hf_check_numbers_are_stated() -> None:
    data = copy.deepcopy(record())
    data["hf_perplexity"] = {
        "transformers_version": "5.0",
        "windows": 8,
        "tokens": 973,
        "perplexity_hf": 520.5229,
        "perplexity_lmforge": 520.5228,
        "relative_difference": 1.9e-7,
    }
    card = render_model_card(data)
    assert "over the same 8 validation windows (973 tokens) gives perplexity 520.5229" in card
    assert "lmforge gives 520.5228 (relative difference 1.90e-07)" in card


def test_dataset_card_lists_filters_licences_and_languages() -> None:
    card = render_dataset_card(record())
    assert '\nlanguage: ["en"]\n' in card
    assert "| books | book_documents | length | 7 | a (3); b (2); c (1); 1 more |" in card
    assert "| books | 12 | 1 | 1 | 10 |" in card
    assert "| books | Public domain in the USA. | 10 |" in card
    assert "| code | python | 10 |" in card
    assert "`aaa1`" in card and "`bbb2`" in card


@pytest.mark.parametrize(
    ("value", "shown"),
    [(688_768, "689K"), (982e9, "982B"), (12, "12"), (None, "—"), (math.inf, "—"), (0.5, "0.5")],
)
def test_human(value, shown) -> None:
    assert human(value) == shown


def test_number_and_languages() -> None:
    assert number(1.23456) == "1.2346"
    assert number(None) == number(math.nan) == number(True) == "—"
    assert number(7) == "7"
    assert natural_languages({"languages": {"web": {"de": 1, "und": 2}, "code": {"rust": 1}}}) == [
        "de"
    ]
