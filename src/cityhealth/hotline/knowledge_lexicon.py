"""Editors' dictionary words and synonym groups: added to the shipped data files, versioned, audited.

A word or group is identified by its word (a group by its canonical word, the one its variants fold into).
Each change is a new version, a removal a version that is not active, so the history stays whole; setting
what is already in force changes nothing (a retry adds no version). Every change moves the publication
counter, so each worker's index takes the lexicon up on its next search and cuts the articles again.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.hotline import knowledge_repository as repository
from cityhealth.hotline.knowledge_models import LEXICON_KINDS, LexiconEntry
from cityhealth.hotline.knowledge_schemas import LexiconEntryRead, LexiconRead
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

RESOURCE = "hotline_kb_lexicon"
MAX_WORD_CHARS = 40


def normalized(word: str, field: str) -> str:
    """A lexicon word as the analyzer sees it (NFKC, lower case), checked: 2 to 40 letters or digits (the
    analyzer splits text at spaces and punctuation, so a word holding one could never be cut whole)."""
    found = unicodedata.normalize("NFKC", word).lower().strip()
    if not 2 <= len(found) <= MAX_WORD_CHARS or not found.isalnum():
        raise ValidationFailed(
            f"{word!r} is not a lexicon word",
            code="invalid_lexicon_word",
            field=field,
            value=word,
            rule=f"2 to {MAX_WORD_CHARS} letters or digits, without spaces or punctuation",
        )
    return found


def _kind(kind: str) -> str:
    if kind not in LEXICON_KINDS:
        raise ValidationFailed(
            f"unknown lexicon kind {kind!r}",
            code="unknown_lexicon_kind",
            field="kind",
            value=kind,
            rule=f"one of {', '.join(LEXICON_KINDS)}",
        )
    return kind


def _read(entry: LexiconEntry) -> LexiconEntryRead:
    return LexiconEntryRead(
        kind=entry.kind,
        term=entry.term,
        version_no=entry.version_no,
        variants=[v for v in entry.variants.split("\n") if v],
        active=entry.active,
        changed_by=entry.changed_by,
        changed_at=entry.changed_at,
    )


async def lexicon(session: AsyncSession) -> LexiconRead:
    """The words and groups in force (latest version active)."""
    current = [entry for entry in await repository.lexicon_current(session) if entry.active]
    return LexiconRead(
        words=[_read(e) for e in current if e.kind == "word"],
        synonyms=[_read(e) for e in current if e.kind == "synonyms"],
    )


async def history(session: AsyncSession, kind: str, term: str) -> list[LexiconEntryRead]:
    """Every version of one word or group, oldest first; 404 when it never existed."""
    versions = await repository.lexicon_versions(session, _kind(kind), normalized(term, "term"))
    if not versions:
        raise NotFound(f"no {kind} {term!r} in the lexicon", code="lexicon_entry_not_found", field="term", value=term)
    return [_read(entry) for entry in versions]


async def put_word(session: AsyncSession, clock: Clock, principal: Principal, word: str) -> LexiconEntryRead:
    """Add a word to the custom dictionary (the segmenter keeps it whole)."""
    return await _change(session, clock, principal, "word", normalized(word, "word"), (), active=True)


async def put_synonyms(
    session: AsyncSession, clock: Clock, principal: Principal, term: str, variants: Sequence[str]
) -> LexiconEntryRead:
    """Set a synonym group: its variants fold into `term`. A variant may belong to one group only."""
    term = normalized(term, "term")
    words = list(dict.fromkeys(normalized(v, "variants") for v in variants))
    if term in words:
        raise ValidationFailed(
            f"{term!r} is the group's own word",
            code="synonym_is_term",
            field="variants",
            value=term,
            rule="the variants are the other words of the group",
        )
    await repository.lock_lexicon(session)
    for other in await repository.lexicon_current(session):
        if other.kind != "synonyms" or not other.active or other.term == term:
            continue
        taken = set(other.variants.split("\n")) | {other.term}
        clash = next((w for w in [term, *words] if w in taken), None)
        if clash is not None:
            raise Conflict(
                f"{clash!r} already belongs to the synonym group of {other.term!r}",
                code="synonym_taken",
                field="variants",
                value=clash,
                rule="a word belongs to one synonym group; change or remove that group first",
            )
    return await _change(session, clock, principal, "synonyms", term, words, active=True)


async def remove(session: AsyncSession, clock: Clock, principal: Principal, kind: str, term: str) -> LexiconEntryRead:
    """Take a word or group out of force; its history stays. Removing a removed one changes nothing."""
    term = normalized(term, "term")
    versions = await repository.lexicon_versions(session, _kind(kind), term)
    if not versions:
        raise NotFound(f"no {kind} {term!r} in the lexicon", code="lexicon_entry_not_found", field="term", value=term)
    return await _change(session, clock, principal, kind, term, (), active=False)


async def _change(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    kind: str,
    term: str,
    variants: Sequence[str],
    *,
    active: bool,
) -> LexiconEntryRead:
    await repository.lock_lexicon(session)
    versions = await repository.lexicon_versions(session, kind, term)
    latest = versions[-1] if versions else None
    text = "\n".join(variants) if active else (latest.variants if latest is not None else "")
    if latest is not None and latest.active == active and (not active or latest.variants == text):
        return _read(latest)  # already in force (or already removed): a retry adds nothing
    entry = LexiconEntry(
        kind=kind,
        term=term,
        version_no=(latest.version_no + 1) if latest else 1,
        variants=text,
        active=active,
        changed_by=principal.subject,
        changed_at=clock.now(),
    )
    repository.add(session, entry)
    await repository.bump_generation(session)
    await session.flush()
    action = Action.DELETE if not active else Action.CREATE if latest is None else Action.UPDATE
    record(
        session, clock, principal, action, RESOURCE, resource_id=f"{kind}:{term}", detail=f"version={entry.version_no}"
    )
    return _read(entry)
