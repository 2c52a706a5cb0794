"""The token shard format.

A shard is one binary file::

    offset  size  field
    0       8     magic b"LMFSHARD"
    8       4     format version (uint32, little-endian), currently 1
    12      4     token item size in bytes (uint32): 2 for uint16, 4 for uint32
    16      8     token count (uint64)
    24      8     document count (uint64)
    32      4     vocabulary size (uint32)
    36      28    reserved, zero
    64      ...   tokens, little-endian uint16 (vocabulary <= 65,536) or uint32

beside an index ``<shard>.idx`` holding ``document count + 1`` little-endian uint64 token
offsets of document starts (the last is the token count). Documents end with the
end-of-document token. Reading needs only numpy::

    tokens = np.memmap("train_000.bin", dtype=np.uint16, mode="r", offset=64)
    starts = np.fromfile("train_000.bin.idx", dtype="<u8")
    first_document = tokens[starts[0]:starts[1]]
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"LMFSHARD"
FORMAT_VERSION = 1
HEADER_SIZE = 64
_HEADER = struct.Struct("<8sIIQQI28x")


class ShardFormatError(ValueError):
    """A file is not a valid token shard."""


@dataclass(frozen=True)
class ShardHeader:
    item_size: int
    n_tokens: int
    n_documents: int
    vocab_size: int

    @property
    def dtype(self) -> np.dtype:
        return np.dtype("<u2") if self.item_size == 2 else np.dtype("<u4")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits, else uint32."""
    return np.dtype("<u2") if vocab_size <= 65_536 else np.dtype("<u4")


def write_shard(path: Path, documents: Iterable[np.ndarray], vocab_size: int) -> ShardHeader:
    """Write documents (arrays of token ids) as one shard plus its index.

    Written to temporary names and renamed, so a reader never sees a partial shard.
    """
    path = Path(path)
    dtype = token_dtype(vocab_size)
    tmp_path = path.with_name(path.name + ".tmp")
    offsets = [0]
    with open(tmp_path, "wb") as out:
        out.write(b"\0" * HEADER_SIZE)
        for doc in documents:
            doc = np.asarray(doc)
            if doc.size and int(doc.max()) >= vocab_size:
                raise ShardFormatError(
                    f"{path}: token id {int(doc.max())} outside vocabulary of {vocab_size}"
                )
            out.write(doc.astype(dtype, copy=False).tobytes())
            offsets.append(offsets[-1] + int(doc.size))
        header = ShardHeader(dtype.itemsize, offsets[-1], len(offsets) - 1, vocab_size)
        out.seek(0)
        out.write(
            _HEADER.pack(
                MAGIC,
                FORMAT_VERSION,
                header.item_size,
                header.n_tokens,
                header.n_documents,
                vocab_size,
            )
        )
    index_tmp = path.with_name(path.name + ".idx.tmp")
    np.asarray(offsets, dtype="<u8").tofile(index_tmp)
    os.replace(index_tmp, index_path(path))
    os.replace(tmp_path, path)
    return header


def index_path(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + ".idx")


def read_header(path: Path) -> ShardHeader:
    """Parse and validate a shard header against the file size."""
    path = Path(path)
    with open(path, "rb") as handle:
        raw = handle.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE:
        raise ShardFormatError(f"{path}: shorter than the {HEADER_SIZE}-byte header")
    magic, version, item_size, n_tokens, n_documents, vocab_size = _HEADER.unpack(raw)
    if magic != MAGIC:
        raise ShardFormatError(f"{path}: bad magic {magic!r}, not a token shard")
    if version != FORMAT_VERSION:
        raise ShardFormatError(f"{path}: format version {version}, expected {FORMAT_VERSION}")
    if item_size not in (2, 4):
        raise ShardFormatError(f"{path}: token item size {item_size} is not 2 or 4")
    expected = HEADER_SIZE + n_tokens * item_size
    actual = path.stat().st_size
    if actual != expected:
        raise ShardFormatError(
            f"{path}: header says {n_tokens} tokens ({expected} bytes) but file has {actual}"
        )
    return ShardHeader(item_size, n_tokens, n_documents, vocab_size)


def read_tokens(path: Path) -> np.memmap:
    """The shard's tokens as a read-only memory map."""
    header = read_header(path)
    return np.memmap(
        path, dtype=header.dtype, mode="r", offset=HEADER_SIZE, shape=(header.n_tokens,)
    )


def read_document_offsets(path: Path) -> np.ndarray:
    """Token offsets of document starts, with the total token count appended."""
    header = read_header(path)
    offsets = np.fromfile(index_path(path), dtype="<u8")
    if offsets.size != header.n_documents + 1 or int(offsets[-1]) != header.n_tokens:
        raise ShardFormatError(f"{index_path(path)}: index does not match the shard header")
    return offsets
