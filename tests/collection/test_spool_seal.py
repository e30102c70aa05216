"""The sealed spool: compressed, encrypted frames bound to their spool, their place and the end of the stream.

Each way of tampering with the stored frames (an altered, reordered, dropped, duplicated or truncated frame,
a frame from another job's spool) is refused with a message that says which; reading is frame by frame.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update

from cityhealth.collection.models import SpoolFrame
from cityhealth.collection.spool import (
    FRAME_BYTES,
    FrameSeal,
    SpoolIntegrityError,
    SpoolWriter,
    open_frames,
    read_spool,
)
from cityhealth.db.engine import Database

KEY = bytes(range(32))
NOW = datetime(2022, 6, 15, 1, 30, tzinfo=UTC)


def sealed(text: bytes, frame_bytes: int = 10, spool_id: str = "a" * 32) -> list[tuple[int, bytes]]:
    seal = FrameSeal(KEY, spool_id)
    pieces = [text[i : i + frame_bytes] for i in range(0, len(text), frame_bytes)] or [b""]
    return [(index, seal.seal(index, piece, last=index == len(pieces) - 1)) for index, piece in enumerate(pieces)]


def read(frames: list[tuple[int, bytes]], spool_id: str = "a" * 32) -> bytes:
    return b"".join(open_frames(FrameSeal(KEY, spool_id), frames))


TEXT = b'{"a": 1}\n{"b": 2}\n{"c": 3}\n{"d": 4}\n'


def test_frames_read_back_as_written() -> None:
    frames = sealed(TEXT)
    assert len(frames) == 4
    assert read(frames) == TEXT


def test_a_frame_holds_compressed_ciphertext_not_the_text() -> None:
    text = b'{"id_number": "320102198504120370"}\n' * 2000
    ((_, frame),) = sealed(text, frame_bytes=len(text))
    assert b"320102198504120370" not in frame
    assert len(frame) < len(text) / 20  # zstd: a repetitive day's records shrink many-fold


def test_an_altered_frame_is_refused() -> None:
    frames = sealed(TEXT)
    index, frame = frames[1]
    frames[1] = (index, frame[:5] + bytes([frame[5] ^ 1]) + frame[6:])
    with pytest.raises(SpoolIntegrityError, match="frame 1 does not authenticate"):
        read(frames)


def test_reordered_frames_are_refused() -> None:
    frames = sealed(TEXT)
    frames[1], frames[2] = (1, frames[2][1]), (2, frames[1][1])  # contents swapped, indexes as stored
    with pytest.raises(SpoolIntegrityError, match="frame 1 does not authenticate"):
        read(frames)


def test_a_dropped_frame_is_refused() -> None:
    frames = sealed(TEXT)
    del frames[1]
    with pytest.raises(SpoolIntegrityError, match="frame 1 is missing"):
        read(frames)
    renumbered = [(i, frame) for i, (_, frame) in enumerate(frames)]  # the gap closed up by renumbering
    with pytest.raises(SpoolIntegrityError, match="frame 1 does not authenticate"):
        read(renumbered)


def test_a_duplicated_frame_is_refused() -> None:
    frames = sealed(TEXT)
    frames.insert(2, (2, frames[1][1]))
    renumbered = [(i, frame) for i, (_, frame) in enumerate(frames)]
    with pytest.raises(SpoolIntegrityError, match="frame 2 does not authenticate"):
        read(renumbered)


def test_a_last_frame_repeated_after_itself_is_refused() -> None:
    frames = sealed(TEXT)
    frames.append((len(frames), frames[-1][1]))
    with pytest.raises(SpoolIntegrityError, match="frames follow its last frame 3"):
        read(frames)


def test_a_truncated_spool_is_refused_after_the_frames_it_has() -> None:
    frames = sealed(TEXT)[:2]
    opened = open_frames(FrameSeal(KEY, "a" * 32), frames)
    assert next(opened) == TEXT[:10]  # read frame by frame: the first frame arrives before the end is known
    with pytest.raises(SpoolIntegrityError, match="ends at frame 1, before its last frame"):
        next(opened)
    with pytest.raises(SpoolIntegrityError, match="no frames"):
        read([])


def test_a_frame_from_another_spool_is_refused() -> None:
    mine, theirs = sealed(TEXT), sealed(TEXT, spool_id="b" * 32)
    mine[2] = theirs[2]
    with pytest.raises(SpoolIntegrityError, match="frame 2 does not authenticate"):
        read(mine)
    with pytest.raises(SpoolIntegrityError, match="frame 0 does not authenticate"):
        read(sealed(TEXT), spool_id="b" * 32)


def test_a_spool_sealed_under_another_key_is_refused() -> None:
    frames = sealed(TEXT)
    with pytest.raises(SpoolIntegrityError, match="frame 0 does not authenticate"):
        b"".join(open_frames(FrameSeal(os.urandom(32), "a" * 32), frames))


async def _write(database: Database, text: bytes) -> str:
    writer = SpoolWriter(database, KEY, NOW)
    for start in range(0, len(text), 300_000):
        await writer.write(text[start : start + 300_000])
    await writer.close()
    return writer.spool_id


async def _read(database: Database, spool_id: str) -> bytes:
    loop = asyncio.get_running_loop()
    return await asyncio.to_thread(lambda: b"".join(read_spool(database, KEY, spool_id, loop)))


async def test_a_stored_spool_reads_back_and_a_tampered_row_is_refused(database: Database) -> None:
    text = os.urandom(FRAME_BYTES // 2) * 5  # 2.5 frames' worth: 3 frames, the last partial
    spool_id = await _write(database, text)
    assert await _read(database, spool_id) == text
    async with database.transaction() as session:
        indexes = (await session.execute(select(SpoolFrame.frame_index).where(SpoolFrame.spool_id == spool_id)))
        assert sorted(indexes.scalars()) == [0, 1, 2]
        await session.execute(update(SpoolFrame).where(SpoolFrame.spool_id == spool_id, SpoolFrame.frame_index == 2)
                              .values(frame_index=7))
    with pytest.raises(SpoolIntegrityError, match="frame 2 is missing"):
        await _read(database, spool_id)


async def test_a_text_ending_on_a_frame_edge_ends_with_an_empty_last_frame(database: Database) -> None:
    text = b"x" * FRAME_BYTES
    spool_id = await _write(database, text)
    assert await _read(database, spool_id) == text
    async with database.transaction() as session:  # the empty last frame lost: the full one is not the end
        await session.execute(delete(SpoolFrame).where(SpoolFrame.spool_id == spool_id, SpoolFrame.frame_index == 1))
    with pytest.raises(SpoolIntegrityError, match="ends at frame 0, before its last frame"):
        await _read(database, spool_id)
