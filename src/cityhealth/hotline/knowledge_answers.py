"""Answers from the knowledge base: an agent's search, and the IVR's self-service question with its confidence."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import ValidationFailed
from cityhealth.hotline import knowledge_repository as repository
from cityhealth.hotline.knowledge import check_category
from cityhealth.hotline.knowledge_index import KnowledgeIndex
from cityhealth.hotline.knowledge_models import SelfServiceQuery
from cityhealth.hotline.knowledge_schemas import MAX_QUESTION_CHARS, SearchHit, SelfServiceAnswer, SelfServiceAsk
from cityhealth.personal_numbers import scrub
from cityhealth.security.principals import Principal

# Below this confidence (the chance that the best article is right, knowledge_confidence) the IVR says it has
# no answer and offers an agent: it answers when right is likelier than wrong, a wrong answer costing the caller
# as much as a right one saves (benchmarks/hotline_confidence.py, docs/decisions/hotline-knowledge.md).
ANSWER_THRESHOLD = 0.5
NO_TERMS_KEY = "(no terms)"


def _check_question(text: str, field: str) -> str:
    text = text.strip()
    if not text:
        raise ValidationFailed("the question is empty", code="empty_question", field=field, value=text,
                               rule="at least one character")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValidationFailed(f"the question has {len(text)} characters", code="question_too_long", field=field,
                               value=f"{len(text)} characters", rule=f"at most {MAX_QUESTION_CHARS} characters")
    return text


async def search(session: AsyncSession, clock: Clock, index: KnowledgeIndex, text: str, *,
                 category: str | None = None, limit: int = 10) -> list[SearchHit]:
    """Published articles valid today, best first."""
    text = _check_question(text, "q")
    if category is not None:
        check_category(category)
    current = await index.current(session)
    hits = current.search(text, today=business_date(clock.now()), category=category, limit=limit)
    # The index holds the published text it was built from, and is rebuilt whenever that changes.
    return [SearchHit(article_id=hit.article_id, key=document.key, category=document.category,
                      title=document.title, answer=document.body, score=hit.score, confidence=hit.confidence)
            for hit in hits if (document := current.document(hit.article_id)) is not None]


async def self_service(session: AsyncSession, clock: Clock, principal: Principal, index: KnowledgeIndex,
                       ask: SelfServiceAsk) -> SelfServiceAnswer:
    """The best answer at or above the threshold, or none, once per utterance: a retry gets the same answer and
    an unanswered question is counted once in its group."""
    text = _check_question(ask.text, "text")
    previous = await repository.query_by_utterance(session, ask.utterance_id)
    if previous is not None:
        return await _replayed(session, previous.utterance_id, previous.answered, previous.confidence,
                               previous.article_id)
    current = await index.current(session)
    hits = current.search(text, today=business_date(clock.now()), limit=1)
    best = hits[0] if hits else None
    confidence = best.confidence if best is not None else 0.0
    answered = best is not None and confidence >= ANSWER_THRESHOLD
    now, masked = clock.now(), scrub(text)
    inserted = await repository.insert_query(session, {
        "utterance_id": ask.utterance_id, "client": principal.subject, "text": masked, "asked_at": now,
        "answered": answered, "article_id": best.article_id if answered and best else None,
        "confidence": confidence, "unanswered_id": None})
    if not inserted:  # the same utterance, asked concurrently: answer as the first did
        raced = await _query(session, ask.utterance_id)
        return await _replayed(session, raced.utterance_id, raced.answered, raced.confidence, raced.article_id)
    await repository.count_asked(session, business_date(now), answered=answered)
    if not answered:
        terms = sorted(set(current.analyzer.terms(masked)))
        group_key = " ".join(terms)[:200] or NO_TERMS_KEY
        group_id = await repository.count_unanswered(session, group_key, masked, now)
        query = await _query(session, ask.utterance_id)
        query.unanswered_id = group_id
        await session.flush()
        return SelfServiceAnswer(utterance_id=ask.utterance_id, answered=False, confidence=confidence,
                                 threshold=ANSWER_THRESHOLD)
    return await _replayed(session, ask.utterance_id, True, confidence, best.article_id if best else None)


async def _query(session: AsyncSession, utterance_id: str) -> SelfServiceQuery:
    found = await repository.query_by_utterance(session, utterance_id)
    if found is None:  # inserted (or found taken) in this very transaction: it cannot be missing
        raise RuntimeError(f"self-service query {utterance_id!r} vanished within its transaction")
    return found


async def _replayed(session: AsyncSession, utterance_id: str, answered: bool, confidence: float,
                    article_id: int | None) -> SelfServiceAnswer:
    answer = SelfServiceAnswer(utterance_id=utterance_id, answered=answered, confidence=confidence,
                               threshold=ANSWER_THRESHOLD)
    if answered and article_id is not None:
        found = await repository.published_by_ids(session, [article_id])
        if article_id in found:
            article, version = found[article_id]
            answer.article_id, answer.title, answer.answer = article.id, version.title, version.body
    return answer
