"""evaluation_report: validation loss, perplexity and bits per byte, with baselines and samples."""

import gzip
import itertools
import json
import lzma
import math
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import Field
from tokenizers import Tokenizer

from assets.publishing import report, upstream_versions
from assets.tokens import TOKENIZER_FILE, shard_files
from assets.training import load_plan
from model.evaluate import (
    evaluate_lm,
    load_checkpoint,
    sample_continuations,
    token_byte_lengths_from_tokenizer,
)
from model.shards import read_document_offsets, read_tokens
from model.train import CHECKPOINT_NAME
from pipelines.resources import DataRoot
from pipelines.storage import Manifest

CODE_VERSION = "1"
REPORT_FILE = "report.json"
DEFAULT_PROMPTS = [
    "The history of the Internet",
    "Wikipedia is a free online encyclopedia",
    "In this paper we",
]


class EvaluationConfig(dg.Config):
    max_windows: int | None = Field(
        default=2000, description="Cap on validation windows scored (None: all)."
    )
    batch_size: int = 8
    prompts: list[str] = Field(default_factory=lambda: list(DEFAULT_PROMPTS))
    max_new_tokens: int = 48
    temperature: float = 0.8
    top_k: int = 50
    seed: int = 0


@dg.asset(
    group_name="model",
    kinds={"python", "pytorch"},
    code_version=CODE_VERSION,
    owners=["team:model"],
    description=(
        "Validation loss, perplexity and bits per byte of the trained model, beside the "
        "Chinchilla-predicted loss and the bits per byte of gzip and xz on the same text, "
        "plus sampled continuations."
    ),
)
def evaluation_report(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    model_checkpoint: Manifest,
    token_shards: Manifest,
    tokenizer: Manifest,
    training_plan: Manifest,
    data_root: DataRoot,
) -> dg.Output[Manifest]:
    upstream = upstream_versions(
        model_checkpoint=model_checkpoint,
        token_shards=token_shards,
        tokenizer=tokenizer,
        training_plan=training_plan,
    )
    with data_root.store().publish(
        "evaluation_report", None, CODE_VERSION, config.model_dump(), upstream
    ) as staging:
        if staging.existing is None:
            result = build_report(config, model_checkpoint, token_shards, tokenizer, training_plan)
            (staging.dir / REPORT_FILE).write_text(json.dumps(result, indent=2))
            staging.counts.update(
                {
                    "val_loss": result["validation"]["loss"],
                    "val_perplexity": result["validation"]["perplexity"],
                    "val_bits_per_byte": result["validation"]["bits_per_byte"],
                    "val_tokens_scored": result["validation"]["tokens"],
                }
            )
    result = json.loads(staging.result.local_path(REPORT_FILE).read_text())
    return report(context, staging, {"report": dg.MetadataValue.md(render_markdown(result))})


def build_report(
    config: EvaluationConfig,
    model_checkpoint: Manifest,
    token_shards: Manifest,
    tokenizer: Manifest,
    training_plan: Manifest,
) -> dict:
    tokenizer_path = tokenizer.local_path(TOKENIZER_FILE)
    model, checkpoint = load_checkpoint(model_checkpoint.local_path(CHECKPOINT_NAME))
    val_shards = shard_files(token_shards, "val")
    metrics = evaluate_lm(
        model,
        val_shards,
        block_size=model.config.block_size,
        batch_size=config.batch_size,
        token_byte_lengths=token_byte_lengths_from_tokenizer(tokenizer_path),
        max_windows=config.max_windows,
    )
    validation_text = decode_documents(val_shards, Tokenizer.from_file(str(tokenizer_path)))
    plan = load_plan(training_plan)
    samples = sample_continuations(
        model,
        tokenizer_path,
        config.prompts,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k,
        seed=config.seed,
    )
    return {
        "checkpoint_version": model_checkpoint.version,
        "validation": metrics,
        "compression_baselines_bits_per_byte": compression_baselines(validation_text),
        "predicted_loss": plan["predicted_loss"],
        "trained_steps": checkpoint.get("step"),
        "samples": [
            {"prompt": p, "continuation": c} for p, c in zip(config.prompts, samples, strict=True)
        ],
    }


def decode_documents(shard_paths: list[str], tokenizer: Tokenizer) -> str:
    """The validation text, decoded document by document from the shards."""
    texts = []
    for path in shard_paths:
        tokens = read_tokens(Path(path))
        offsets = read_document_offsets(Path(path))
        for start, end in itertools.pairwise(offsets):
            texts.append(tokenizer.decode(np.asarray(tokens[start:end]).tolist()))
    return "\n".join(texts)


def compression_baselines(text: str) -> dict[str, float]:
    """Bits per byte of general-purpose compressors: the bar a language model must clear."""
    raw = text.encode("utf-8")
    if not raw:
        return {}
    return {
        "gzip": 8 * len(gzip.compress(raw, compresslevel=9)) / len(raw),
        "xz": 8 * len(lzma.compress(raw, preset=9)) / len(raw),
    }


def render_markdown(result: dict) -> str:
    val = result["validation"]
    lines = [
        "| metric | value |",
        "|---|---|",
        f"| validation loss (nats/token) | {val['loss']:.4f} |",
        f"| perplexity | {val['perplexity']:.2f} |",
        f"| bits per byte | {val['bits_per_byte']:.4f} |",
        f"| tokens scored | {val['tokens']} |",
    ]
    for name, bpb in result["compression_baselines_bits_per_byte"].items():
        lines.append(f"| {name} bits per byte (baseline) | {bpb:.4f} |")
    for name, loss in result["predicted_loss"].items():
        if loss is not None and math.isfinite(loss):
            lines.append(f"| predicted loss, {name} fit | {loss:.4f} |")
    lines.append("\n**Samples**\n")
    for sample in result["samples"]:
        continuation = " ".join(sample["continuation"].split())
        lines.append(f"- *{sample['prompt']}* → {continuation}")
    return "\n".join(lines)
