"""Bulk uploads spooled: checked while streaming (size limits, gzip, encoding, line length), kept
compressed and sealed in the database, read back as rows.

The body never sits in memory whole: it is inflated and decoded in bounded pieces, re-encoded to UTF-8 and
written in frames of FRAME_BYTES of text, each zstd-compressed and AES-GCM sealed to its spool, its position
and the end of the stream (FrameSeal), so a copy of the database does not reveal the ID numbers inside the
files and a frame out of place is detected. The frames live in a table, so any worker on any machine reads
any job's spool (docs/decisions/job-queue.md). The upload limits (`UploadLimits`) are checked as each piece
arrives, so a body past one is refused after reading at most one network chunk (and one inflation step)
beyond it.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import struct
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cityhealth.collection.lines import LineSplitter, lines_of, too_large
from cityhealth.collection.prepare import InputRow
from cityhealth.collection.repository import spool_frames
from cityhealth.collection.rules import make_error
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.db.failures import ensure_room
from cityhealth.errors import ValidationFailed

FRAME_BYTES = 1 << 20  # of text per frame: what a reader holds at a time
# zstd's default level. Measured on the ingest benchmark's records (350 bytes each): 16-fold smaller, sealed at
# ~700 MB/s (0.5 µs of CPU per record) and opened at ~1 GB/s (0.33 µs), beside ~60 µs to ingest a record.
_ZSTD_LEVEL = 3
_SEAL_INFO = b"cityhealth collection spool frame v1|"
_FETCH_FRAMES = 4
_DISCARD_FRAMES = 2  # per transaction, when an upload's spool is removed
_MAX_INFLATE = 1 << 20
SUPPORTED_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "gb18030": "gb18030", "gbk": "gb18030", "gb2312": "gb18030"}


@dataclass(frozen=True)
class UploadLimits:
    """What one bulk upload may be (config.Settings.upload_*): checked while it streams, and when read back."""

    max_compressed_bytes: int
    max_decompressed_bytes: int
    max_line_bytes: int
    max_expansion_ratio: int
    expansion_check_from_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> UploadLimits:
        return cls(
            settings.upload_max_compressed_bytes,
            settings.upload_max_decompressed_bytes,
            settings.upload_max_line_bytes,
            settings.upload_max_expansion_ratio,
            settings.upload_expansion_check_from_bytes,
        )

    def check_declared(self, content_length: int) -> None:
        """Refuse a body whose declared length is already past the limit, before reading any of it."""
        if content_length > self.max_compressed_bytes:
            raise too_large(
                "max_compressed_bytes",
                self.max_compressed_bytes,
                f"the declared body of {content_length} bytes is larger than a bulk upload may be",
            )

    def check_sizes(self, compressed: int, inflated: int) -> None:
        """The body so far: `compressed` bytes read from the network, `inflated` bytes after gzip."""
        if compressed > self.max_compressed_bytes:
            raise too_large(
                "max_compressed_bytes", self.max_compressed_bytes, "the body is larger than a bulk upload may be"
            )
        if inflated > self.max_decompressed_bytes:
            raise too_large(
                "max_decompressed_bytes",
                self.max_decompressed_bytes,
                "the body inflates to more than a bulk upload may be",
            )
        # Small files are exempt: a short, repetitive file can compress far better than a day's records.
        if inflated > self.expansion_check_from_bytes and inflated > self.max_expansion_ratio * compressed:
            raise too_large(
                "max_expansion_ratio",
                self.max_expansion_ratio,
                f"the body inflates more than {self.max_expansion_ratio}-fold (a compression bomb?)",
            )


class SpoolIntegrityError(Exception):
    """A spool's frames do not read back as they were written: altered, reordered, dropped, duplicated,
    truncated, or from another spool. Never repaired: the job fails with this message."""


class FrameSeal:
    """Seals and opens the frames of one spool.

    A frame is zstd-compressed, then AES-256-GCM encrypted under a key derived (HKDF-SHA256) from the
    platform's spool key and the spool's id: a frame moved to another spool does not open there. The
    associated data binds the frame to its index and to whether it is the last, so a frame read at another
    place, a dropped or repeated frame, or a stream cut before its last frame fails to authenticate. The key
    is new for every spool, so the frame index alone is a nonce that is never reused under it.
    """

    def __init__(self, spool_key: bytes, spool_id: str) -> None:
        self.spool_id = spool_id
        self._id = spool_id.encode()
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_SEAL_INFO + self._id).derive(spool_key)
        self._aead = AESGCM(key)

    def _aad(self, index: int, last: bool) -> bytes:
        return self._id + struct.pack(">QB", index, last)

    def seal(self, index: int, plain: bytes, *, last: bool) -> bytes:
        packed = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(plain)
        return self._aead.encrypt(struct.pack(">IQ", 0, index), packed, self._aad(index, last))

    def open(self, index: int, sealed: bytes, *, last: bool) -> bytes:
        """The frame's text; InvalidTag when it was not sealed as frame `index` (and `last`) of this spool."""
        packed = self._aead.decrypt(struct.pack(">IQ", 0, index), sealed, self._aad(index, last))
        return zstandard.ZstdDecompressor().decompress(packed, max_output_size=FRAME_BYTES)

    def opens(self, index: int, sealed: bytes, *, last: bool) -> bool:
        try:
            self.open(index, sealed, last=last)
        except InvalidTag:
            return False
        return True


def open_frames(seal: FrameSeal, frames: Iterable[tuple[int, bytes]]) -> Iterator[bytes]:
    """The text of a spool's frames, one frame at a time, each checked for its place in the stream."""
    stream = iter(frames)
    current = next(stream, None)
    if current is None:
        raise SpoolIntegrityError(f"spool {seal.spool_id} has no frames (truncated before its first frame)")
    expected = 0
    while current is not None:
        following = next(stream, None)
        index, sealed = current
        last = following is None
        if index != expected:
            raise SpoolIntegrityError(
                f"spool {seal.spool_id}: frame {expected} is missing (the next stored frame is {index})"
            )
        try:
            yield seal.open(expected, sealed, last=last)
        except InvalidTag:
            if last and seal.opens(expected, sealed, last=False):
                raise SpoolIntegrityError(
                    f"spool {seal.spool_id} ends at frame {expected}, before its last frame (truncated)"
                ) from None
            if not last and seal.opens(expected, sealed, last=True):
                raise SpoolIntegrityError(
                    f"spool {seal.spool_id}: frames follow its last frame {expected} (duplicated or appended)"
                ) from None
            raise SpoolIntegrityError(
                f"spool {seal.spool_id}: frame {expected} does not authenticate "
                "(altered, moved from another position, or from another spool)"
            ) from None
        expected += 1
        current = following


class SpoolWriter:
    """Writes an upload's text as sealed frames in the database, one short transaction per frame.

    Nothing is kept but the unfinished frame (FRAME_BYTES at most), so an upload of any size streams through.
    `seal` (pure CPU: a thread's work) cuts and seals the frames, `store` writes them; `write` does both.
    """

    def __init__(self, database: Database, spool_key: bytes, written_at: datetime, reserve_bytes: int = 0) -> None:
        self.spool_id = uuid.uuid4().hex
        self.database = database
        self.reserve_bytes = reserve_bytes
        self.written_at = written_at
        self.frames = 0
        self._seal = FrameSeal(spool_key, self.spool_id)
        self._pieces: list[bytes] = []
        self._pending = 0

    def seal(self, pieces: Iterable[bytes], *, last: bool = False) -> list[tuple[int, bytes]]:
        """The frames `pieces` complete, sealed (with `last`, the rest as the last frame, maybe empty)."""
        sealed = []
        for piece in pieces:
            self._pieces.append(piece)
            self._pending += len(piece)
            if self._pending >= FRAME_BYTES:
                text = b"".join(self._pieces)
                start = 0
                while len(text) - start >= FRAME_BYTES:
                    sealed.append(self._next(text[start : start + FRAME_BYTES], last=False))
                    start += FRAME_BYTES
                self._pieces = [text[start:]] if start < len(text) else []
                self._pending = len(text) - start
        if last:
            sealed.append(self._next(b"".join(self._pieces), last=True))
            self._pieces, self._pending = [], 0
        return sealed

    def _next(self, plain: bytes, *, last: bool) -> tuple[int, bytes]:
        index, self.frames = self.frames, self.frames + 1
        return index, self._seal.seal(index, plain, last=last)

    def ensure_room(self, needed: int) -> None:
        """Refuse (507) a spool that would leave the database's disk with less than the reserve free (SQLite)."""
        ensure_room(self.database, needed, self.reserve_bytes)

    async def store(self, frames: Iterable[tuple[int, bytes]]) -> None:
        for index, sealed in frames:
            # A frame written to the last bytes of the disk would leave the platform unable to write anything,
            # this spool's removal included.
            self.ensure_room(len(sealed))
            async with self.database.transaction() as session:
                await spool_frames.add_frame(session, self.spool_id, index, sealed, self.written_at)

    async def write(self, data: bytes) -> None:
        # Compressing and encrypting a MiB takes milliseconds: in a thread, off the event loop.
        await self.store(await asyncio.to_thread(self.seal, [data]))

    async def close(self) -> None:
        """Seal what is left as the last frame (an empty one when the text ended on a frame's edge)."""
        await self.store(await asyncio.to_thread(self.seal, [], last=True))

    async def discard(self) -> None:
        """Delete the frames written so far, a few per transaction: the removal must succeed on a disk that is
        nearly full, where one transaction deleting them all (SQLite writes each freed page to its WAL, zeroed:
        secure delete) could need as much room as the spool itself."""
        while True:
            async with self.database.transaction() as session:
                if await spool_frames.delete_last_frames(session, self.spool_id, _DISCARD_FRAMES) < _DISCARD_FRAMES:
                    return


def read_spool(
    database: Database, spool_key: bytes, spool_id: str, loop: asyncio.AbstractEventLoop
) -> Iterator[bytes]:
    """A spool's text frame by frame, fetched a few frames at a time; run in a thread, not in `loop`.

    The frames are read through the event loop's engine (`loop` runs the queries), so that this iterator can
    be consumed by the threads that parse the rows while the loop goes on serving.
    """
    return open_frames(FrameSeal(spool_key, spool_id), _stored_frames(database, spool_id, loop))


def _stored_frames(database: Database, spool_id: str, loop: asyncio.AbstractEventLoop) -> Iterator[tuple[int, bytes]]:
    after = -1
    while True:
        rows = asyncio.run_coroutine_threadsafe(_fetch(database, spool_id, after), loop).result()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


async def _fetch(database: Database, spool_id: str, after: int) -> list[tuple[int, bytes]]:
    async with database.transaction() as session:
        return await spool_frames.frames_after(session, spool_id, after, _FETCH_FRAMES)


class BodyDecoder:
    """Inflates (gzip) and decodes a streamed body, yielding UTF-8; refuses truncation, bad encodings, and
    bodies past the upload limits (sizes, expansion, line length) as soon as they pass them."""

    def __init__(self, *, compressed: bool, encoding: str, limits: UploadLimits) -> None:
        self._inflate: Any = zlib.decompressobj(wbits=31) if compressed else None
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._offset = 0
        self._started = False
        self._limits = limits
        self._lines = LineSplitter(limits.max_line_bytes)
        self.sha256 = hashlib.sha256()
        self.bytes_in = 0
        self.bytes_inflated = 0
        self.head = bytearray()  # the first bytes of text, for the CSV header

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self.bytes_in += len(chunk)
        self._limits.check_sizes(self.bytes_in, self.bytes_inflated)
        self.sha256.update(chunk)
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
            # Bounded: feed() drained every unconsumed input, so only what zlib holds back is left.
            yield from self._decode(self._inflate.flush(), final=False)
            if not self._inflate.eof:
                raise ValidationFailed(
                    "the gzip stream ends before its end marker (truncated upload?)",
                    code="gzip_truncated",
                    field="body",
                    rule="gzip.truncated",
                )
        yield from self._decode(b"", final=True)
        self._lines.finish()

    def _decode(self, data: bytes, *, final: bool) -> Iterator[bytes]:
        self.bytes_inflated += len(data)
        self._limits.check_sizes(self.bytes_in, self.bytes_inflated)
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
            self._lines.check(out)
            yield out


def csv_header(head: bytes) -> list[str]:
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    return next(csv.reader([first]), [])


def csv_rows(
    chunks: Iterator[bytes], default_form: str | None, after: int = 0, *, max_line_bytes: int | None
) -> Iterator[InputRow]:
    """Rows of a CSV spool (header first); the position is the data row number. Empty cells are absent."""
    text = (line.decode("utf-8") + "\n" for line in lines_of(chunks, max_line_bytes))
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
