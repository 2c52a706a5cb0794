"""PII masking (datatrove's PIIFormatter patterns) on real pages and through the pipeline."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
from datatrove.data import Document

from assets.pii import PiiMasker
from assets.web_extraction import WebExtractionSettings, extract_web_documents
from bench.extraction import write_warc
from pipelines.executors import ExecutorSettings

TAX_HELP = "html/wcxb/dev/html/0288.html.gz"  # a United Way page listing freetax@uwkc.org
ADDRESS = "freetax@uwkc.org"


def test_a_real_email_address_in_a_page_is_replaced(corpus_dir: Path) -> None:
    gold = json.loads((corpus_dir / "html/wcxb/dev/ground-truth/0288.json").read_text())
    text = gold["ground_truth"]["main_content"]
    occurrences = text.count(ADDRESS)
    assert occurrences >= 1
    masked, counts = PiiMasker().mask(text)
    assert ADDRESS not in masked and "@uwkc.org" not in masked
    assert counts["emails"] >= occurrences
    assert masked.count("@example.") == counts["emails"]
    # Only the addresses changed: the words around them are still there.
    assert (
        masked.replace("email@example.com", "")
        .replace("firstname.lastname@example.org", "")
        .split()[:20]
        == text.replace(ADDRESS, "").split()[:20]
    )


def test_public_ipv4_addresses_are_masked_and_private_ones_kept() -> None:
    text = "Server 8.8.8.8 answered; router 192.168.1.1 and loopback 127.0.0.1 did not; 10.0.0.7."
    masked, counts = PiiMasker().mask(text)
    assert "8.8.8.8" not in masked and counts == {"ips": 1}
    for private in ("192.168.1.1", "127.0.0.1", "10.0.0.7"):
        assert private in masked
    assert PiiMasker().mask("No addresses, only 3.5 and version 2.1 here.") == (
        "No addresses, only 3.5 and version 2.1 here.",
        {},
    )


def test_masker_step_records_counts_in_metadata_and_stats() -> None:
    masker = PiiMasker()
    docs = [
        Document(text="mail a.b@gmail.com from 203.0.113.9 or 1.1.1.1", id="1", metadata={}),
        Document(text="nothing here", id="2", metadata={}),
    ]
    out = list(masker.run(docs))
    assert out[0].metadata["pii_masked"] == {"emails": 1, "ips": 1}  # 203.0.113.x is reserved
    assert "pii_masked" not in out[1].metadata
    assert masker.stats["emails_masked"].total == 1 and masker.stats["ips_masked"].total == 1


def test_pipeline_masks_kept_and_excluded_text(corpus_dir: Path, tmp_path: Path) -> None:
    """The real page, wrapped in a WARC, plus a copy cut so short that it is excluded."""
    payload = gzip.decompress((corpus_dir / TAX_HELP).read_bytes())
    assert ADDRESS.encode() in payload
    short = f"<html><body><p>Write to {ADDRESS}.</p></body></html>".encode()
    warc = tmp_path / "pages.warc.gz"
    write_warc(
        [("https://www.uwkc.org/free-tax-help/", payload), ("https://x.test/s", short)], warc
    )
    stats = extract_web_documents(
        [warc],
        tmp_path / "out",
        crawl="TEST",
        fetched_at="2024-01-01T00:00:00Z",
        settings=WebExtractionSettings(
            gopher_repetition=False, gopher_quality=False, c4_quality=False, fineweb_quality=False
        ),
        executor=ExecutorSettings(workers=1),
    )
    [kept] = pq.read_table(tmp_path / "out/documents").to_pylist()
    [excluded] = pq.read_table(tmp_path / "out/excluded").to_pylist()
    assert ADDRESS not in kept["text"] and "email@example.com" in kept["text"]
    assert json.loads(kept["metadata"])["pii_masked"]["emails"] >= 1
    assert stats.pii_masked["emails"] == json.loads(kept["metadata"])["pii_masked"]["emails"]
    assert excluded["reason"] == "text_too_short" and ADDRESS not in excluded["text"]
    assert "example" in excluded["text"]
