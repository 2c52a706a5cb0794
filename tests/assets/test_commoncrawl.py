"""Common Crawl listing and fetching against the mirror over the real sample corpus."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assets.commoncrawl import CrawlInfo, fetch_warcs, list_crawls, list_warc_paths
from pipelines.http import FetchError, HttpClient
from pipelines.mirror import SAMPLE_CRAWL_ID, SAMPLE_CRAWL_NAME, Mirror

SAMPLE_FILES = [
    "IAH-20080430204825-00000-blackbook.warc.gz",
    "dolma-sample-0000.warc.gz",
    "ukwa-sopa-wikipedia-homepage.warc.gz",
    "ukwa-wikipedia-post-blackout-main-page.warc.gz",
]


@pytest.fixture(scope="module")
def mirror(corpus_dir: Path) -> Iterator[Mirror]:
    with Mirror(corpus_dir) as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def index(mirror: Mirror, sleeps: list[float]) -> Iterator[HttpClient]:
    with HttpClient(mirror.commoncrawl_index_url, sleep=sleeps.append) as client:
        yield client


@pytest.fixture
def data(mirror: Mirror, sleeps: list[float]) -> Iterator[HttpClient]:
    with HttpClient(mirror.commoncrawl_data_url, sleep=sleeps.append) as client:
        yield client


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_list_crawls(index: HttpClient) -> None:
    crawls = list_crawls(index)
    by_id = {c.id: c for c in crawls}
    assert {"CC-MAIN-2020-34", "CC-MAIN-2024-22", "CC-MAIN-2014-35"} <= set(by_id)
    assert crawls[0].id == "CC-MAIN-2025-47"  # newest first, as the service lists them
    assert by_id["CC-MAIN-2024-22"].cdx_api == "https://index.commoncrawl.org/CC-MAIN-2024-22-index"
    assert by_id["CC-MAIN-2024-22"].start.startswith("2024-05")  # type: ignore[union-attr]
    assert crawls[-1] == CrawlInfo(
        id=SAMPLE_CRAWL_ID,
        name=SAMPLE_CRAWL_NAME,
        cdx_api=None,
        timegate=None,
        start=crawls[-1].start,
        end=crawls[-1].end,
    )


def test_list_warc_paths_of_each_kind(data: HttpClient) -> None:
    for kind, name in [
        ("warc", "whirlwind.warc.gz"),
        ("wat", "whirlwind.warc.wat.gz"),
        ("wet", "whirlwind.warc.wet.gz"),
    ]:
        assert list_warc_paths(data, "CC-MAIN-2024-22", kind) == [
            f"crawl-data/CC-MAIN-2024-22/segments/sample/{kind}/{name}"
        ]
    assert list_warc_paths(data, SAMPLE_CRAWL_ID) == [
        f"crawl-data/{SAMPLE_CRAWL_ID}/segments/sample/warc/{name}" for name in SAMPLE_FILES
    ]


def test_an_unknown_crawl_is_a_clear_error(
    data: HttpClient, mirror: Mirror, sleeps: list[float]
) -> None:
    with pytest.raises(FetchError) as info:
        list_warc_paths(data, "CC-MAIN-2099-01")
    url = f"{mirror.commoncrawl_data_url}/crawl-data/CC-MAIN-2099-01/warc.paths.gz"
    assert (
        url in str(info.value) and "404" in str(info.value) and "CC-MAIN-2099-01" in str(info.value)
    )
    assert info.value.url == url and info.value.status == 404
    assert sleeps == []


def test_arguments_are_checked(data: HttpClient, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="crawl id"):
        list_warc_paths(data, "../../etc")
    with pytest.raises(ValueError, match="kind"):
        list_warc_paths(data, "CC-MAIN-2024-22", "arc")
    with pytest.raises(ValueError, match="max_files"):
        fetch_warcs(data, "CC-MAIN-2024-22", tmp_path, max_files=0)


def test_every_sample_crawl_is_listed_and_fetchable(
    index: HttpClient, data: HttpClient, corpus_dir: Path, tmp_path: Path
) -> None:
    """What the sensor and the raw asset do together: every crawl with data can be fetched."""
    originals = {p.name: p for p in (corpus_dir / "commoncrawl").rglob("*.warc.gz")}
    available = []
    for crawl in list_crawls(index):
        try:
            list_warc_paths(data, crawl.id)
        except FetchError:
            continue
        available.append(crawl.id)
        for fetched in fetch_warcs(data, crawl.id, tmp_path, max_files=10):
            assert fetched.sha256 == sha256_of(originals[fetched.path.name])
    assert available == ["CC-MAIN-2024-22", "CC-MAIN-2020-34", "CC-MAIN-2014-35", SAMPLE_CRAWL_ID]


def test_fetch_warcs_keeps_the_crawl_data_path(
    data: HttpClient, mirror: Mirror, corpus_dir: Path, tmp_path: Path
) -> None:
    fetched = fetch_warcs(data, SAMPLE_CRAWL_ID, tmp_path, max_files=2)
    assert [f.path.name for f in fetched] == SAMPLE_FILES[:2]
    for f in fetched:
        assert f.relative_path.startswith(f"crawl-data/{SAMPLE_CRAWL_ID}/segments/sample/warc/")
        assert f.path == tmp_path / f.relative_path
        assert f.url == f"{mirror.commoncrawl_data_url}/{f.relative_path}"
        original = corpus_dir / "commoncrawl/other-webarchives" / f.path.name
        assert f.size == original.stat().st_size and f.sha256 == sha256_of(original)
    assert not list(tmp_path.rglob("*.part"))


def test_fetch_warcs_again_gives_the_same_files(data: HttpClient, tmp_path: Path) -> None:
    first = fetch_warcs(data, "CC-MAIN-2020-34", tmp_path, max_files=1)
    second = fetch_warcs(data, "CC-MAIN-2020-34", tmp_path, max_files=1)
    assert first == second and len(first) == 1


def test_fetch_warcs_resumes_a_partial_file(data: HttpClient, tmp_path: Path) -> None:
    [done] = fetch_warcs(data, "CC-MAIN-2020-34", tmp_path / "a", max_files=1)
    part = tmp_path / "b" / (done.relative_path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(done.path.read_bytes()[:50_000])
    [again] = fetch_warcs(data, "CC-MAIN-2020-34", tmp_path / "b", max_files=1)
    assert again.sha256 == done.sha256 and not part.exists()


def test_max_bytes_bounds_the_total(data: HttpClient, corpus_dir: Path, tmp_path: Path) -> None:
    first_size = (corpus_dir / "commoncrawl/other-webarchives" / SAMPLE_FILES[0]).stat().st_size
    fetched = fetch_warcs(data, SAMPLE_CRAWL_ID, tmp_path, max_files=4, max_bytes=first_size + 1000)
    assert [f.path.name for f in fetched] == SAMPLE_FILES[:1]
    assert not list(tmp_path.rglob("*.part"))
    with pytest.raises(FetchError, match=r"first WARC file .* does not fit in max_bytes=1000"):
        fetch_warcs(data, SAMPLE_CRAWL_ID, tmp_path / "tiny", max_files=1, max_bytes=1000)


def test_the_truncated_crawl_file_is_fetched_as_served(
    data: HttpClient, corpus_dir: Path, tmp_path: Path
) -> None:
    [fetched] = fetch_warcs(data, "CC-MAIN-2014-35", tmp_path, max_files=3)
    broken = corpus_dir / "commoncrawl/broken/CC-MAIN-2014-35-truncated-excerpt.warc.gz"
    assert fetched.sha256 == sha256_of(broken)


class _FailingData(BaseHTTPRequestHandler):
    """A data host whose listing is fine and whose WARC answers 503 for ever."""

    protocol_version = "HTTP/1.1"
    listing = gzip.compress(b"crawl-data/CC-X/segments/s/warc/a.warc.gz\n")

    def do_GET(self) -> None:
        self.close_connection = True
        ok = self.path.endswith("warc.paths.gz")
        body = self.listing if ok else b"busy"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_file_failing_after_retries_names_its_url(tmp_path: Path, sleeps: list[float]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FailingData)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with (
            HttpClient(base, max_retries=2, sleep=sleeps.append) as data,
            pytest.raises(FetchError) as info,
        ):
            fetch_warcs(data, "CC-X", tmp_path, max_files=1)
        message = str(info.value)
        assert f"{base}/crawl-data/CC-X/segments/s/warc/a.warc.gz" in message
        assert "503" in message and "3 attempts" in message
        assert info.value.status == 503 and len(sleeps) == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()
