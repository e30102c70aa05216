"""Bulk uploads on disk: checked while streaming (gzip, encoding), kept encrypted, read back as rows.

The body never sits in memory whole: it is inflated and decoded in bounded pieces, re-encoded to UTF-8 and
written in AES-GCM frames (4-byte length, 12-byte nonce, ciphertext) under a key derived from the field
encryption key, so a copy of var/ does not reveal the ID numbers inside the files.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cityhealth.collection.prepare import InputRow
from cityhealth.collection.rules import make_error
from cityhealth.errors import ValidationFailed

FRAME_BYTES = 1 << 20
_MAX_INFLATE = 1 << 20
SUPPORTED_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "gb18030": "gb18030", "gbk": "gb18030", "gb2312": "gb18030"}


class SpoolWriter:
    def __init__(self, path: Path, key: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._aead = AESGCM(key)
        self._aad = path.name.encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= FRAME_BYTES:
            self._frame(bytes(self._buffer[:FRAME_BYTES]))
            del self._buffer[:FRAME_BYTES]

    def _frame(self, plain: bytes) -> None:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plain, self._aad)
        self._file.write(struct.pack(">I", len(sealed)) + nonce + sealed)

    def close(self) -> None:
        if self._buffer:
            self._frame(bytes(self._buffer))
            self._buffer.clear()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def read_spool(path: Path, key: bytes) -> Iterator[bytes]:
    aead = AESGCM(key)
    aad = path.name.encode()
    with path.open("rb") as handle:
        while header := handle.read(4):
            (size,) = struct.unpack(">I", header)
            nonce = handle.read(12)
            yield aead.decrypt(nonce, handle.read(size), aad)


class BodyDecoder:
    """Inflates (gzip) and decodes a streamed body, yielding UTF-8; refuses truncation and bad encodings."""

    def __init__(self, *, compressed: bool, encoding: str) -> None:
        self._inflate: Any = zlib.decompressobj(wbits=31) if compressed else None
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._offset = 0
        self._started = False
        self.sha256 = hashlib.sha256()
        self.bytes_in = 0
        self.head = bytearray()  # the first bytes of text, for the CSV header

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self.sha256.update(chunk)
        self.bytes_in += len(chunk)
        if self._inflate is None:
            yield from self._decode(chunk, final=False)
            return
        data = chunk
        while data or self._inflate.unconsumed_tail:
            try:
                out = self._inflate.decompress(data or self._inflate.unconsumed_tail, _MAX_INFLATE)
            except zlib.error as exc:
                raise ValidationFailed(
                    f"the gzip stream is corrupt: {exc}", code="gzip_invalid", field="body", rule="gzip.invalid"
                ) from exc
            data = b""
            yield from self._decode(out, final=False)
            if self._inflate.eof and self._inflate.unused_data:  # a multi-member gzip file
                rest = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=31)
                data = rest

    def finish(self) -> Iterator[bytes]:
        if self._inflate is not None:
            yield from self._decode(self._inflate.flush(), final=False)
            if not self._inflate.eof:
                raise ValidationFailed(
                    "the gzip stream ends before its end marker (truncated upload?)",
                    code="gzip_truncated",
                    field="body",
                    rule="gzip.truncated",
                )
        yield from self._decode(b"", final=True)

    def _decode(self, data: bytes, *, final: bool) -> Iterator[bytes]:
        if not self._started and data:
            if data.startswith(codecs.BOM_UTF8) and self._encoding == "utf-8":
                data = data[3:]
            self._started = True
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                f"the body is not valid {self._encoding} text at byte {self._offset + exc.start}; "
                "declare the encoding (charset=GB18030) or send UTF-8",
                code="encoding_invalid",
                field="body",
                value=self._offset + exc.start,
                rule="encoding.invalid",
            ) from exc
        self._offset += len(data)
        # UTF-8 passes through as sent; other encodings are re-encoded so the spool is always UTF-8.
        out = data if self._encoding == "utf-8" else text.encode("utf-8")
        if len(self.head) < 65536:
            self.head += out[: 65536 - len(self.head)]
        if out:
            yield out


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def ndjson_rows(
    chunks: Iterable[bytes], default_form: str | None, after: int = 0, start: int = 1
) -> Iterator[InputRow]:
    """Rows of an NDJSON spool; the position is the line number (the first line is `start`).

    Lines up to `after` are skipped.
    """
    for number, line in enumerate(_lines(chunks), start=start):
        if number <= after or not line or line.isspace():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield InputRow(number, form=default_form, error=make_error("json.malformed", "record", detail=str(exc)))
            continue
        if not isinstance(value, dict):
            yield InputRow(
                number,
                form=default_form,
                error=make_error("json.malformed", "record", detail="a JSON object is expected"),
            )
            continue
        form = value.pop("form", default_form)
        yield InputRow(number, record=value, form=form if isinstance(form, str) else None)


def ndjson_blocks(chunks: Iterable[bytes], lines_per_block: int, after: int = 0) -> Iterator[tuple[int, int, bytes]]:
    """The spool's lines after `after` in blocks of `lines_per_block`: (first line number, last, the lines).

    A block goes to a worker process whole; its lines keep their numbers (ndjson_rows(start=first)).
    """
    block: list[bytes] = []
    first = after + 1
    number = 0
    for number, line in enumerate(_lines(chunks), start=1):
        if number <= after:
            continue
        block.append(line)
        if len(block) == lines_per_block:
            yield first, number, b"\n".join(block)
            block = []
            first = number + 1
    if block:
        yield first, number, b"\n".join(block)


def csv_header(head: bytes) -> list[str]:
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    return next(csv.reader([first]), [])


def csv_rows(chunks: Iterator[bytes], default_form: str | None, after: int = 0) -> Iterator[InputRow]:
    """Rows of a CSV spool (header first); the position is the data row number. Empty cells are absent."""
    text = (line.decode("utf-8") + "\n" for line in _lines(chunks))
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    width = len(header)
    for number, cells in enumerate(reader, start=1):
        if number <= after or not cells:
            continue
        if len(cells) != width:
            yield InputRow(
                number,
                form=default_form,
                error=make_error("csv.malformed", "record", detail=f"{len(cells)} cells for {width} columns"),
            )
            continue
        record = {name: value for name, value in zip(header, cells, strict=True) if value != ""}
        form = record.pop("form", default_form)
        yield InputRow(number, record=record, form=form)
