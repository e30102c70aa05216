"""SQL of the knowledge base: articles and versions, published documents, self-service queries, unanswered groups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.counters import add_counts
from cityhealth.hotline.knowledge_models import (
    KnowledgeArticle,
    KnowledgeState,
    KnowledgeVersion,
    LexiconEntry,
    SelfServiceDay,
    SelfServiceQuery,
    UnansweredQuestion,
)


async def article(session: AsyncSession, article_id: int, *, for_update: bool = False) -> KnowledgeArticle | None:
    statement = select(KnowledgeArticle).where(KnowledgeArticle.id == article_id)
    if for_update:
        statement = statement.with_for_update()
    found: KnowledgeArticle | None = (await session.scalars(statement)).first()
    return found


async def article_by_key(session: AsyncSession, key: str) -> KnowledgeArticle | None:
    found: KnowledgeArticle | None = (await session.scalars(
        select(KnowledgeArticle).where(KnowledgeArticle.key == key))).first()
    return found


async def existing_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):  # bound the IN list
        found.update(await session.scalars(select(KnowledgeArticle.key)
                                           .where(KnowledgeArticle.key.in_(keys[start:start + 500]))))
    return found


async def version(session: AsyncSession, article_id: int, version_no: int) -> KnowledgeVersion | None:
    found: KnowledgeVersion | None = (await session.scalars(select(KnowledgeVersion).where(
        KnowledgeVersion.article_id == article_id, KnowledgeVersion.version_no == version_no))).first()
    return found


async def versions(session: AsyncSession, article_id: int) -> Sequence[KnowledgeVersion]:
    return (await session.scalars(select(KnowledgeVersion).where(KnowledgeVersion.article_id == article_id)
                                  .order_by(KnowledgeVersion.version_no))).all()


async def articles_page(session: AsyncSession, *, category: str | None, status: str | None, limit: int,
                        offset: int) -> tuple[Sequence[tuple[KnowledgeArticle, KnowledgeVersion]], int]:
    """Articles with their latest version, newest change first, and how many match."""
    conditions: list[Any] = []
    if category is not None:
        conditions.append(KnowledgeArticle.category == category)
    if status is not None:
        conditions.append(KnowledgeArticle.status == status)
    total = await session.scalar(select(func.count()).select_from(KnowledgeArticle).where(*conditions))
    result = await session.execute(
        select(KnowledgeArticle, KnowledgeVersion)
        .join(KnowledgeVersion, (KnowledgeVersion.article_id == KnowledgeArticle.id)
              & (KnowledgeVersion.version_no == KnowledgeArticle.latest_version_no))
        .where(*conditions).order_by(KnowledgeArticle.updated_at.desc(), KnowledgeArticle.id.desc())
        .limit(limit).offset(offset))
    return [(a, v) for a, v in result], int(total or 0)


async def publication_generation(session: AsyncSession) -> int:
    """The counter of changes to what is published: the index is rebuilt when it moves."""
    return int(await session.scalar(select(KnowledgeState.generation).where(KnowledgeState.id == 1)) or 0)


async def bump_generation(session: AsyncSession) -> None:
    await session.execute(update(KnowledgeState).where(KnowledgeState.id == 1)
                          .values(generation=KnowledgeState.generation + 1))


async def lock_lexicon(session: AsyncSession) -> None:
    """Serialise lexicon changes (rare): the state row, locked until the transaction ends (PostgreSQL; SQLite
    has one writer at a time)."""
    await session.execute(select(KnowledgeState.id).where(KnowledgeState.id == 1).with_for_update())


async def lexicon_versions(session: AsyncSession, kind: str, term: str) -> Sequence[LexiconEntry]:
    """Every version of one word or group, oldest first."""
    result = await session.scalars(select(LexiconEntry).where(LexiconEntry.kind == kind, LexiconEntry.term == term)
                                   .order_by(LexiconEntry.version_no))
    return result.all()


async def lexicon_current(session: AsyncSession) -> Sequence[LexiconEntry]:
    """The latest version of every word and group, removed ones included (inactive)."""
    latest = (select(LexiconEntry.kind, LexiconEntry.term, func.max(LexiconEntry.version_no).label("version_no"))
              .group_by(LexiconEntry.kind, LexiconEntry.term).subquery())
    result = await session.scalars(
        select(LexiconEntry).join(latest, (LexiconEntry.kind == latest.c.kind) & (LexiconEntry.term == latest.c.term)
                                  & (LexiconEntry.version_no == latest.c.version_no))
        .order_by(LexiconEntry.kind, LexiconEntry.term))
    return result.all()


async def published(session: AsyncSession) -> Sequence[tuple[KnowledgeArticle, KnowledgeVersion]]:
    """Every published article with its published version."""
    result = await session.execute(
        select(KnowledgeArticle, KnowledgeVersion)
        .join(KnowledgeVersion, (KnowledgeVersion.article_id == KnowledgeArticle.id)
              & (KnowledgeVersion.version_no == KnowledgeArticle.published_version_no))
        .where(KnowledgeArticle.status == "published").order_by(KnowledgeArticle.id))
    return [(a, v) for a, v in result]


async def published_by_ids(session: AsyncSession,
                           ids: Sequence[int]) -> dict[int, tuple[KnowledgeArticle, KnowledgeVersion]]:
    result = await session.execute(
        select(KnowledgeArticle, KnowledgeVersion)
        .join(KnowledgeVersion, (KnowledgeVersion.article_id == KnowledgeArticle.id)
              & (KnowledgeVersion.version_no == KnowledgeArticle.published_version_no))
        .where(KnowledgeArticle.id.in_(ids)))
    return {a.id: (a, v) for a, v in result}


async def query_by_utterance(session: AsyncSession, utterance_id: str) -> SelfServiceQuery | None:
    found: SelfServiceQuery | None = (await session.scalars(
        select(SelfServiceQuery).where(SelfServiceQuery.utterance_id == utterance_id))).first()
    return found


def _insert(session: AsyncSession, table: Any) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table))


async def count_unanswered(session: AsyncSession, group_key: str, sample_text: str, now: datetime) -> int:
    """One more asking of the group `group_key` (made on its first asking); its id. Safe under concurrent askings."""
    table = UnansweredQuestion.__table__
    statement = _insert(session, table).values(
        group_key=group_key, sample_text=sample_text, asked_count=1, first_asked_at=now, last_asked_at=now,
        status="open")
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.group_key],
        set_={"asked_count": table.c.asked_count + 1, "last_asked_at": now},
    ).returning(table.c.id)
    return int((await session.execute(statement)).scalar_one())


async def insert_query(session: AsyncSession, values: dict[str, Any]) -> bool:
    """The query row, unless its utterance id is already there; whether it was inserted."""
    table = SelfServiceQuery.__table__
    statement = _insert(session, table).values(**values).on_conflict_do_nothing(
        index_elements=[table.c.utterance_id]).returning(table.c.id)
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def count_asked(session: AsyncSession, day: date, *, answered: bool) -> None:
    """One more self-service question asked on `day` (Asia/Shanghai), answered or not."""
    await add_counts(session, SelfServiceDay.__table__, ("business_date",),  # type: ignore[arg-type]
                     [{"business_date": day, "asked": 1, "answered": int(answered)}])


async def unanswered(session: AsyncSession, question_id: int, *, for_update: bool = False) -> UnansweredQuestion | None:
    statement = select(UnansweredQuestion).where(UnansweredQuestion.id == question_id)
    if for_update:
        statement = statement.with_for_update()
    found: UnansweredQuestion | None = (await session.scalars(statement)).first()
    return found


async def unanswered_page(session: AsyncSession, *, status: str | None, limit: int,
                          offset: int) -> tuple[Sequence[UnansweredQuestion], int]:
    """Groups of unanswered questions, most asked first."""
    conditions = [UnansweredQuestion.status == status] if status is not None else []
    total = await session.scalar(select(func.count()).select_from(UnansweredQuestion).where(*conditions))
    rows = (await session.scalars(select(UnansweredQuestion).where(*conditions)
                                  .order_by(UnansweredQuestion.asked_count.desc(),
                                            UnansweredQuestion.last_asked_at.desc(), UnansweredQuestion.id)
                                  .limit(limit).offset(offset))).all()
    return rows, int(total or 0)


def add(session: AsyncSession, *rows: Any) -> None:
    session.add_all(rows)
