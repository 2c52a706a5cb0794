"""Project Gutenberg's URL layout, served from the sample's ``gutenberg/`` folder."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.mirror_routes import Route, file_route

GUTENBERG_PREFIX = "/gutenberg"
_PG_TEXT = re.compile(r"^pg(\d+)(-0|-8)?\.txt$")
_PG_RDF = re.compile(r"^pg(\d+)\.rdf$")
_PG_EDITION_PREFERENCE = {"-0": 0, "": 1, "-8": 2}  # UTF-8 first, as cache/epub serves it


def add_gutenberg(routes: dict[str, Route], pg_dir: Path) -> None:
    for path in sorted((pg_dir / "rdf").glob("pg*.rdf")):
        if match := _PG_RDF.match(path.name):
            book = match[1]
            routes[f"{GUTENBERG_PREFIX}/cache/epub/{book}/pg{book}.rdf"] = file_route(path)
    best: dict[str, tuple[int, Path]] = {}
    for path in sorted((pg_dir / "texts").glob("pg*.txt")):
        match = _PG_TEXT.match(path.name)
        if not match:
            continue
        book, edition = match[1], match[2] or ""
        route = file_route(path)
        routes[f"{GUTENBERG_PREFIX}/files/{book}/{book}{edition}.txt"] = route
        routes[f"{GUTENBERG_PREFIX}/files/{book}/{path.name}"] = route
        rank = _PG_EDITION_PREFERENCE[edition]
        if book not in best or rank < best[book][0]:
            best[book] = (rank, path)
    for book, (_, path) in best.items():
        routes[f"{GUTENBERG_PREFIX}/cache/epub/{book}/pg{book}.txt"] = file_route(path)
