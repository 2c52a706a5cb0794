"""Serve a sample corpus folder over HTTP in the real services' URL layouts.

Tests run the fetchers against it over ``../shared/corpus``; an air-gapped team runs it in the
foreground with ``python -m pipelines.mirror --corpus-dir DIR --port N`` and points a ``custom``
sources profile at it. Each service lives under its own path prefix; a fetcher's base URL is the
mirror's base URL plus that prefix (``commoncrawl_data_url = <mirror>/commoncrawl``,
``commoncrawl_index_url = <mirror>/index``).

URL path → what it serves (paths relative to ``corpus_dir``):

- ``/index/collinfo.json`` → ``commoncrawl/index/collinfo.json`` re-encoded, with entries
  appended for served crawls it does not list, last the pseudo-crawl ``SAMPLE-WEBARCHIVES``
  ("offline sample: non-Common-Crawl web archives"; no CDX API: timegate/cdx-api are null).
- ``/commoncrawl/crawl-data/<crawl>/segments/sample/<kind>/<file>`` (kind warc, wat, wet) →
  ``commoncrawl/**/<file>``, whose warcinfo record names ``<crawl>`` in ``isPartOf`` (a WAT
  without one belongs to the crawl of its WARC: ``X.warc.wat.gz`` → ``X.warc.gz``).
  ``commoncrawl/other-webarchives/*`` are the WARCs of ``SAMPLE-WEBARCHIVES``.
- ``/commoncrawl/crawl-data/<crawl>/<kind>.paths.gz`` → generated gzip listing of the
  ``crawl-data/...`` paths above, one per line, as data.commoncrawl.org has it (404 for a kind
  the crawl has no file of).
- ``/gutenberg/cache/epub/<id>/pg<id>.rdf`` → ``gutenberg/rdf/pg<id>.rdf``;
  ``/gutenberg/cache/epub/<id>/pg<id>.txt`` → ``gutenberg/texts/pg<id>[-0|-8].txt`` (the UTF-8
  ``-0`` edition preferred; ``-8`` files are ISO-8859-1, unlike the real cache);
  ``/gutenberg/files/<id>/<id>[-0|-8].txt`` and ``.../pg<id>[-0|-8].txt`` → each edition.
- ``/github/api/<REST path>`` → ``github/api/*.json`` by the object's own ``url`` (repository,
  licence, contents; a repository's ``/license``); octokit fixtures by their recorded path.
  ``/github/api/repos/<owner>/<repo>/tarball/<sha>`` (short or full commit id) →
  ``github/tarball/<owner>-<repo>-<sha7>.tar.gz``.
- ``/github/<path>``, ``/arxiv/<path>`` → the files themselves.
- ``/`` → a plain-text list of every path served.

Files keep their corpus names (the sha256 in MANIFEST.md identifies them). Every response
supports HEAD and single ``Range`` requests and closes its connection afterwards. The route
table is built once, at start; a path not in it is a 404, so nothing outside the table (``..``,
absolute paths, encoded variants) can be reached.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from warcio.archiveiterator import ArchiveIterator

from pipelines.mirror_arxiv import ARXIV_PREFIX, add_arxiv
from pipelines.mirror_github import GITHUB_PREFIX, add_github
from pipelines.mirror_gutenberg import GUTENBERG_PREFIX, add_gutenberg
from pipelines.mirror_routes import Route, file_route, json_route, route_key

log = logging.getLogger(__name__)

COMMONCRAWL_DATA_PREFIX = "/commoncrawl"
COMMONCRAWL_INDEX_PREFIX = "/index"

SAMPLE_CRAWL_ID = "SAMPLE-WEBARCHIVES"
SAMPLE_CRAWL_NAME = "offline sample: non-Common-Crawl web archives"
SAMPLE_SEGMENT = "sample"
CORPUS_DIR_SETTING = (
    "the `corpus_dir` setting of the sources resource (environment variable LMFORGE_CORPUS_DIR)"
)

_CC_CRAWL_ID = re.compile(r"^CC-MAIN-\d{4}-\d{2,4}$")
_WARC_KINDS = {".warc.gz": "warc", ".wat.gz": "wat", ".wet.gz": "wet"}
_COPY_CHUNK = 1 << 16


class MirrorError(RuntimeError):
    """The mirror cannot serve: missing folder, clashing files, port in use."""


def check_corpus_dir(corpus_dir: Path) -> Path:
    """The folder, resolved; :class:`MirrorError` naming it and the setting if it is missing."""
    path = Path(corpus_dir).expanduser()
    if not path.is_dir():
        raise MirrorError(
            f"sample corpus folder not found: {path} "
            f"({'not a folder' if path.exists() else 'does not exist'}). Set {CORPUS_DIR_SETTING} "
            "to the folder that holds commoncrawl/, gutenberg/, github/ and arxiv/."
        )
    return path.resolve()


def build_routes(corpus_dir: Path) -> dict[str, Route]:
    """The URL path → :class:`Route` table for everything under ``corpus_dir``."""
    root = check_corpus_dir(corpus_dir)
    routes: dict[str, Route] = {}
    _add_commoncrawl(routes, root / "commoncrawl")
    add_gutenberg(routes, root / "gutenberg")
    add_github(routes, root / "github")
    add_arxiv(routes, root / "arxiv")
    listing = "".join(f"{path}\n" for path in sorted(routes))
    routes["/"] = Route(data=listing.encode(), content_type="text/plain; charset=utf-8")
    return routes


# -- Common Crawl -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _ArchiveFile:
    path: Path
    crawl: str
    kind: str
    date: str | None


def _warcinfo(path: Path) -> dict[str, str]:
    """Fields of the file's first (warcinfo) record plus its WARC-Date; {} when unreadable.

    Only the first record is read, so a file damaged further on (commoncrawl/broken/) still
    tells its crawl.
    """
    try:
        with path.open("rb") as fh:
            record = next(iter(ArchiveIterator(fh)), None)
            if record is None or record.rec_type != "warcinfo":
                return {}
            fields = {"WARC-Date": record.rec_headers.get_header("WARC-Date") or ""}
            text = record.content_stream().read().decode("utf-8", "replace")
    except Exception as error:  # warcio and zlib raise many kinds; all mean "no warcinfo"
        log.warning("cannot read the warcinfo record of %s: %s", path, error)
        return {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _archive_kind(name: str) -> str | None:
    return next((kind for suffix, kind in _WARC_KINDS.items() if name.endswith(suffix)), None)


def _collinfo_time(warc_date: str | None) -> str | None:
    """``2020-08-08T16:54:17Z`` → ``2020-08-08T16:54:17`` (collinfo.json's form)."""
    return warc_date[:19] if warc_date and len(warc_date) >= 19 else None


def _scan_commoncrawl(cc_dir: Path) -> list[_ArchiveFile]:
    """Common Crawl archives (by their warcinfo) and the other web archives (pseudo-crawl)."""
    found: list[_ArchiveFile] = []
    pending: list[tuple[Path, str, str | None]] = []
    others = cc_dir / "other-webarchives"
    for path in sorted(cc_dir.rglob("*.gz")):
        kind = _archive_kind(path.name)
        if kind is None or not path.is_file():
            continue
        info = _warcinfo(path)
        date = info.get("WARC-Date")
        if path.is_relative_to(others):
            found.append(_ArchiveFile(path, SAMPLE_CRAWL_ID, kind, date))
        elif _CC_CRAWL_ID.match(info.get("isPartOf", "")):
            found.append(_ArchiveFile(path, info["isPartOf"], kind, date))
        else:
            pending.append((path, kind, date))
    crawl_of = {f.path: f.crawl for f in found}
    for path, kind, date in pending:
        # WAT files carry no isPartOf: X.warc.wat.gz belongs to the crawl of X.warc.gz.
        companion = path.with_name(path.name.removesuffix(f".{kind}.gz") + ".gz")
        if kind != "warc" and companion in crawl_of:
            found.append(_ArchiveFile(path, crawl_of[companion], kind, date))
        else:
            log.warning("%s: no Common Crawl id in its warcinfo record; not served", path)
    return found


def _add_commoncrawl(routes: dict[str, Route], cc_dir: Path) -> None:
    if not cc_dir.is_dir():
        return
    listings: dict[tuple[str, str], list[str]] = defaultdict(list)
    dates: dict[str, list[str]] = defaultdict(list)
    for archive in _scan_commoncrawl(cc_dir):
        relative = (
            f"crawl-data/{archive.crawl}/segments/{SAMPLE_SEGMENT}/{archive.kind}/"
            f"{archive.path.name}"
        )
        url_path = f"{COMMONCRAWL_DATA_PREFIX}/{relative}"
        if url_path in routes:
            raise MirrorError(
                f"{archive.path} and {routes[url_path].file} would both be served at {url_path}"
            )
        routes[url_path] = file_route(archive.path)
        listings[archive.crawl, archive.kind].append(relative)
        if archive.date:
            dates[archive.crawl].append(archive.date)
    for (crawl, kind), paths in listings.items():
        text = "".join(f"{p}\n" for p in sorted(paths)).encode()
        routes[f"{COMMONCRAWL_DATA_PREFIX}/crawl-data/{crawl}/{kind}.paths.gz"] = Route(
            data=gzip.compress(text, mtime=0), content_type="application/octet-stream"
        )
    routes[f"{COMMONCRAWL_INDEX_PREFIX}/collinfo.json"] = json_route(
        _collinfo(cc_dir / "index" / "collinfo.json", {c for c, _ in listings}, dates)
    )


def _collinfo(
    real_file: Path, crawls: set[str], dates: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """The real collection list, plus an entry for each served crawl it does not list (the
    pseudo-crawl SAMPLE-WEBARCHIVES last)."""
    entries: list[dict[str, Any]] = []
    if real_file.is_file():
        try:
            entries = json.loads(real_file.read_text(encoding="utf-8"))
        except ValueError as error:
            raise MirrorError(f"{real_file} is not valid JSON: {error}") from error
        if not isinstance(entries, list):
            raise MirrorError(f"{real_file} should hold a JSON list of collections")
    listed = {entry.get("id") for entry in entries if isinstance(entry, dict)}
    extra = sorted(crawls - listed - {SAMPLE_CRAWL_ID}, reverse=True)
    if SAMPLE_CRAWL_ID in crawls:
        extra.append(SAMPLE_CRAWL_ID)
    for crawl in extra:
        times = sorted(dates.get(crawl, []))
        entries.append(
            {
                "id": crawl,
                "name": SAMPLE_CRAWL_NAME
                if crawl == SAMPLE_CRAWL_ID
                else f"{crawl} (offline sample)",
                "timegate": None,
                "cdx-api": None,
                "from": _collinfo_time(times[0]) if times else None,
                "to": _collinfo_time(times[-1]) if times else None,
            }
        )
    return entries


# -- Gutenberg, GitHub, arXiv -----------------------------------------------------------------

# -- HTTP -------------------------------------------------------------------------------------


class RangeNotSatisfiable(ValueError):
    pass


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """First and last byte (inclusive) that a single-range ``Range`` header asks for.

    None means "send the whole body": no header, or one this server ignores as RFC 9110 allows
    (several ranges, another unit, bad syntax). Raises :class:`RangeNotSatisfiable` for a range
    that starts past the end, or a zero-length suffix.
    """
    match = _RANGE.match((header or "").strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if not first:
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(header)
    return start, min(end, size - 1)


def _clean_path(target: str) -> str | None:
    """The URL path of a request target, or None if it could reach outside the route table's
    vocabulary (absolute-form targets, ``..``, ``.``, empty segments, backslashes, NUL)."""
    if not target.startswith("/"):
        return None
    path = unquote(target.partition("?")[0].partition("#")[0])
    if path == "/":
        return path
    segments = path[1:].split("/")
    if any(s in ("", ".", "..") or "\\" in s or "\x00" in s for s in segments):
        return None
    return path


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "lmforge-mirror/0.1"
    timeout = 30  # seconds a stalled client may hold a worker thread (and stop())

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _respond(self, *, send_body: bool) -> None:
        self.close_connection = True
        path = _clean_path(self.path)
        query = urlsplit(self.path).query
        route = None
        if path:
            route = self.server.routes.get(route_key(path, query)) or self.server.routes.get(path)
        if route is None:
            self._send_text(404, f"not found: {self.path}\n", send_body)
            return
        try:
            source = route.file.open("rb") if route.file else None
        except OSError:
            self._send_text(404, f"not found: {self.path}\n", send_body)
            return
        try:
            stat = os.fstat(source.fileno()) if source else None
            size = stat.st_size if stat else len(route.data or b"")
            try:
                span = parse_range(self.headers.get("Range"), size)
            except RangeNotSatisfiable:
                self._send_text(
                    416, "range not satisfiable\n", send_body, {"Content-Range": f"bytes */{size}"}
                )
                return
            start, end = span if span else (0, size - 1)
            self.send_response(206 if span else 200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            if span:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            if stat:
                self.send_header("Last-Modified", self.date_time_string(stat.st_mtime))
            self.send_header("Connection", "close")
            self.end_headers()
            if send_body:
                self._copy(source, route.data, start, end - start + 1)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client %s went away during %s", self.address_string(), self.path)
        finally:
            if source:
                source.close()

    def _copy(self, source: BinaryIO | None, data: bytes | None, start: int, length: int) -> None:
        if source is None:
            self.wfile.write((data or b"")[start : start + length])
            return
        source.seek(start)
        while length > 0:
            block = source.read(min(_COPY_CHUNK, length))
            if not block:
                break
            self.wfile.write(block)
            length -= len(block)

    def _send_text(
        self, status: int, text: str, send_body: bool, headers: dict[str, str] | None = None
    ) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for the requests in progress

    def __init__(self, address: tuple[str, int], routes: dict[str, Route]) -> None:
        self.routes = routes
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can hang without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class Mirror:
    """The corpus served on ``host:port`` (port 0: a free one) from a background thread."""

    def __init__(self, corpus_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.corpus_dir = check_corpus_dir(corpus_dir)
        self.host = host
        self.port = port
        self.routes: dict[str, Route] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Mirror:
        if self._server is not None:
            raise MirrorError("mirror already started")
        self.routes = build_routes(self.corpus_dir)
        try:
            self._server = _Server((self.host, self.port), self.routes)
        except OSError as error:
            raise MirrorError(f"cannot listen on {self.host}:{self.port}: {error}") from error
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"mirror-{self._server.server_port}",
            daemon=True,
        )
        self._thread.start()
        log.info("serving %s at %s", self.corpus_dir, self.base_url)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Mirror:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise MirrorError("mirror is not running; call start() or use it as a context manager")
        host = self._server.server_name
        return f"http://{f'[{host}]' if ':' in host else host}:{self._server.server_port}"

    @property
    def commoncrawl_data_url(self) -> str:
        return self.base_url + COMMONCRAWL_DATA_PREFIX

    @property
    def commoncrawl_index_url(self) -> str:
        return self.base_url + COMMONCRAWL_INDEX_PREFIX

    @property
    def gutenberg_url(self) -> str:
        return self.base_url + GUTENBERG_PREFIX

    @property
    def github_api_url(self) -> str:
        return f"{self.base_url}{GITHUB_PREFIX}/api"

    @property
    def arxiv_url(self) -> str:
        return self.base_url + ARXIV_PREFIX


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a sample corpus in the services' layouts.")
    parser.add_argument(
        "--corpus-dir",
        default=os.environ.get("LMFORGE_CORPUS_DIR"),
        help="folder with commoncrawl/, gutenberg/, github/, arxiv/ (default: $LMFORGE_CORPUS_DIR)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    args = parser.parse_args(argv)
    if not args.corpus_dir:
        parser.error("--corpus-dir is required when LMFORGE_CORPUS_DIR is not set")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        mirror = Mirror(Path(args.corpus_dir), host=args.host, port=args.port).start()
    except MirrorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"serving {mirror.corpus_dir} at {mirror.base_url}", flush=True)
    print(f"  commoncrawl_data_url  = {mirror.commoncrawl_data_url}", flush=True)
    print(f"  commoncrawl_index_url = {mirror.commoncrawl_index_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        mirror.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
