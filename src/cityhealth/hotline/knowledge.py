"""Knowledge-base use cases: write and review articles, publish them, search, answer the IVR, collect the unanswered.

A version goes draft -> in_review (its author submits) -> approved (another editor) or rejected (back to the
author, who may resubmit); an approved version is published, and the article may be unpublished. Every
transition names the version it acts on, so a retry of one already made answers as the first did, and any
other move from the current state is refused naming that state.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityhealth.hotline import knowledge_repository as repository
from cityhealth.hotline.knowledge_models import CATEGORIES, KnowledgeArticle, KnowledgeVersion, UnansweredQuestion
from cityhealth.hotline.knowledge_schemas import (
    ArticleCreate,
    ArticlePage,
    ArticleRead,
    ArticleUpdate,
    Transition,
    UnansweredPage,
    UnansweredRead,
    VersionCreate,
    VersionRead,
)
from cityhealth.security.principals import Principal


def categories() -> dict[str, str]:
    return dict(CATEGORIES)


def check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise ValidationFailed(f"unknown category {category!r}", code="unknown_category", field="category",
                               value=category, rule=f"one of {', '.join(CATEGORIES)}")


def _check_validity(valid_from: date | None, valid_until: date | None) -> None:
    if valid_from is not None and valid_until is not None and valid_until < valid_from:
        raise ValidationFailed("valid_until is before valid_from", code="validity_reversed", field="valid_until",
                               value=valid_until.isoformat(), rule="valid_until >= valid_from")


def _questions(lines: list[str]) -> str:
    return "\n".join(line.strip() for line in lines if line.strip())


def _version_read(version: KnowledgeVersion) -> VersionRead:
    return VersionRead(version_no=version.version_no, state=version.state, title=version.title, body=version.body,
                       questions=version.questions.split("\n") if version.questions else [], author=version.author,
                       submitted_by=version.submitted_by, submitted_at=version.submitted_at,
                       reviewed_by=version.reviewed_by, reviewed_at=version.reviewed_at,
                       review_note=version.review_note)


def _article_read(article: KnowledgeArticle, latest: KnowledgeVersion,
                  versions: list[KnowledgeVersion] | None = None) -> ArticleRead:
    return ArticleRead(id=article.id, key=article.key, category=article.category,
                       category_name=CATEGORIES[article.category], status=article.status,
                       latest_version_no=article.latest_version_no, published_version_no=article.published_version_no,
                       valid_from=article.valid_from, valid_until=article.valid_until, created_by=article.created_by,
                       created_at=article.created_at, updated_at=article.updated_at, latest=_version_read(latest),
                       versions=[_version_read(v) for v in versions or []])


async def _article(session: AsyncSession, article_id: int, *, for_update: bool = False) -> KnowledgeArticle:
    found = await repository.article(session, article_id, for_update=for_update)
    if found is None:
        raise NotFound(f"no article {article_id}", code="article_not_found", field="article_id", value=article_id)
    return found


async def _version(session: AsyncSession, article: KnowledgeArticle, version_no: int) -> KnowledgeVersion:
    found = await repository.version(session, article.id, version_no)
    if found is None:
        raise NotFound(f"article {article.id} has no version {version_no}", code="version_not_found",
                       field="version_no", value=version_no)
    return found


async def read_article(session: AsyncSession, article_id: int) -> ArticleRead:
    article = await _article(session, article_id)
    versions = list(await repository.versions(session, article.id))
    return _article_read(article, versions[-1], versions)


async def list_articles(session: AsyncSession, *, category: str | None, status: str | None, limit: int,
                        offset: int) -> ArticlePage:
    if category is not None:
        check_category(category)
    rows, total = await repository.articles_page(session, category=category, status=status, limit=limit,
                                                 offset=offset)
    return ArticlePage(items=[_article_read(a, v) for a, v in rows], total=total)


async def create_article(session: AsyncSession, clock: Clock, principal: Principal,
                         data: ArticleCreate) -> tuple[ArticleRead, bool]:
    """A new article with its first version, a draft; (article, created). A retry with the same key and text is
    the article already made."""
    check_category(data.category)
    _check_validity(data.valid_from, data.valid_until)
    existing = await repository.article_by_key(session, data.key)
    if existing is not None:
        first = await _version(session, existing, 1)
        if (existing.created_by, existing.category, first.title, first.body, first.questions) != (
                principal.subject, data.category, data.title, data.body, _questions(data.questions)):
            raise Conflict(f"an article with key {data.key!r} already exists", code="article_key_taken",
                           field="key", value=data.key, rule="article keys are unique")
        return await read_article(session, existing.id), False
    now = clock.now()
    article = KnowledgeArticle(key=data.key, category=data.category, status="draft", latest_version_no=1,
                               published_version_no=None, valid_from=data.valid_from, valid_until=data.valid_until,
                               created_by=principal.subject, created_at=now, updated_at=now)
    repository.add(session, article)
    await session.flush()
    version = KnowledgeVersion(article_id=article.id, version_no=1, state="draft", title=data.title, body=data.body,
                               questions=_questions(data.questions), author=principal.subject, created_at=now)
    repository.add(session, version)
    await session.flush()
    return _article_read(article, version, [version]), True


async def update_article(session: AsyncSession, clock: Clock, data: ArticleUpdate, article_id: int) -> ArticleRead:
    """Category and validity dates: they change what is served without a new wording."""
    article = await _article(session, article_id, for_update=True)
    fields = data.model_dump(exclude_unset=True)
    if fields.get("category") is not None:
        check_category(fields["category"])
    valid_from = fields.get("valid_from", article.valid_from)
    valid_until = fields.get("valid_until", article.valid_until)
    _check_validity(valid_from, valid_until)
    changed = False
    for name, value in fields.items():
        if value is None and name == "category":
            continue
        if getattr(article, name) != value:
            setattr(article, name, value)
            changed = True
    if changed:
        article.updated_at = clock.now()
        await repository.bump_generation(session)
        await session.flush()
    return await read_article(session, article.id)


def _illegal(article: KnowledgeArticle, version: KnowledgeVersion, action: str, allowed: str) -> Conflict:
    return Conflict(f"cannot {action} version {version.version_no} of article {article.id}: it is {version.state}",
                    code="illegal_transition", field="state", value=version.state,
                    rule=f"{action} applies to a version that is {allowed}")


async def add_version(session: AsyncSession, clock: Clock, principal: Principal, article_id: int,
                      data: VersionCreate) -> ArticleRead:
    """A new wording, a draft; refused while the latest one is in review. A retry returns the draft made."""
    article = await _article(session, article_id, for_update=True)
    latest = await _version(session, article, article.latest_version_no)
    questions = _questions(data.questions)
    if latest.state == "draft" and (latest.author, latest.title, latest.body, latest.questions) == (
            principal.subject, data.title, data.body, questions):
        return await read_article(session, article.id)
    if latest.state == "in_review":
        raise _illegal(article, latest, "write a new version after", "draft, approved or rejected")
    now = clock.now()
    version = KnowledgeVersion(article_id=article.id, version_no=latest.version_no + 1, state="draft",
                               title=data.title, body=data.body, questions=questions, author=principal.subject,
                               created_at=now)
    repository.add(session, version)
    article.latest_version_no = version.version_no
    article.updated_at = now
    await session.flush()
    return await read_article(session, article.id)


async def _latest_named(session: AsyncSession, article: KnowledgeArticle, version_no: int) -> KnowledgeVersion:
    version = await _version(session, article, version_no)
    if version_no != article.latest_version_no:
        raise Conflict(f"version {version_no} of article {article.id} is not its latest ({article.latest_version_no})",
                       code="version_not_latest", field="version_no", value=version_no,
                       rule="review acts on the latest version")
    return version


async def submit(session: AsyncSession, clock: Clock, principal: Principal, article_id: int,
                 data: Transition) -> ArticleRead:
    article = await _article(session, article_id, for_update=True)
    version = await _latest_named(session, article, data.version_no)
    if version.state == "in_review" and version.submitted_by == principal.subject:
        return await read_article(session, article.id)  # the same submission, retried
    if version.state not in ("draft", "rejected"):
        raise _illegal(article, version, "submit", "draft or rejected")
    version.state, version.submitted_by, version.submitted_at = "in_review", principal.subject, clock.now()
    version.reviewed_by = version.reviewed_at = version.review_note = None
    article.updated_at = clock.now()
    await session.flush()
    return await read_article(session, article.id)


async def review(session: AsyncSession, clock: Clock, principal: Principal, article_id: int, data: Transition,
                 *, approve: bool) -> ArticleRead:
    """Approve or send back a version in review; never the submitter's own."""
    outcome = "approved" if approve else "rejected"
    article = await _article(session, article_id, for_update=True)
    version = await _latest_named(session, article, data.version_no)
    if version.state == outcome and version.reviewed_by == principal.subject:
        return await read_article(session, article.id)
    if version.state != "in_review":
        raise _illegal(article, version, "approve" if approve else "reject", "in_review")
    if principal.subject in (version.submitted_by, version.author):
        raise Forbidden("an editor may not review a version they wrote or submitted", code="own_version",
                        field="version_no", value=version.version_no, rule="another editor reviews")
    if not approve and not data.note:
        raise ValidationFailed("a version sent back needs a note for its author", code="note_required",
                               field="note", value=None, rule="reject requires a note")
    version.state, version.reviewed_by, version.reviewed_at = outcome, principal.subject, clock.now()
    version.review_note = data.note
    article.updated_at = clock.now()
    await session.flush()
    return await read_article(session, article.id)


async def publish(session: AsyncSession, clock: Clock, article_id: int, data: Transition) -> ArticleRead:
    """Serve an approved version (the latest approved one named) from now on."""
    article = await _article(session, article_id, for_update=True)
    version = await _version(session, article, data.version_no)
    if article.status == "published" and article.published_version_no == version.version_no:
        return await read_article(session, article.id)
    if version.state != "approved":
        raise _illegal(article, version, "publish", "approved")
    article.status, article.published_version_no, article.updated_at = "published", version.version_no, clock.now()
    await repository.bump_generation(session)
    await session.flush()
    return await read_article(session, article.id)


async def unpublish(session: AsyncSession, clock: Clock, article_id: int) -> ArticleRead:
    article = await _article(session, article_id, for_update=True)
    if article.status == "draft":
        raise Conflict(f"article {article.id} was never published: it is draft", code="illegal_transition",
                       field="status", value=article.status, rule="unpublish applies to a published article")
    if article.status == "published":
        article.status, article.updated_at = "unpublished", clock.now()
        await repository.bump_generation(session)
        await session.flush()
    return await read_article(session, article.id)


def _unanswered_read(row: UnansweredQuestion) -> UnansweredRead:
    return UnansweredRead.model_validate(row)


async def list_unanswered(session: AsyncSession, *, status: str | None, limit: int, offset: int) -> UnansweredPage:
    if status is not None and status not in ("open", "resolved"):
        raise ValidationFailed(f"unknown status {status!r}", code="unknown_status", field="status", value=status,
                               rule="one of open, resolved")
    rows, total = await repository.unanswered_page(session, status=status, limit=limit, offset=offset)
    return UnansweredPage(items=[_unanswered_read(r) for r in rows], total=total)


async def article_from_unanswered(session: AsyncSession, clock: Clock, principal: Principal, question_id: int,
                                  data: ArticleCreate) -> tuple[ArticleRead, bool]:
    """A draft article answering a group of unanswered questions (its sample becomes one of its phrasings);
    the group is resolved. A retry returns the article already made."""
    question = await repository.unanswered(session, question_id, for_update=True)
    if question is None:
        raise NotFound(f"no unanswered question {question_id}", code="unanswered_not_found", field="question_id",
                       value=question_id)
    if question.article_id is not None:
        return await read_article(session, question.article_id), False
    phrasings = list(data.questions)
    if question.sample_text not in phrasings:
        phrasings.append(question.sample_text)
    created, made = await create_article(session, clock, principal, data.model_copy(update={"questions": phrasings}))
    question.status, question.article_id = "resolved", created.id
    question.resolved_by, question.resolved_at = principal.subject, clock.now()
    await session.flush()
    return created, made


def today(clock: Clock) -> date:
    return business_date(clock.now())


# The starter set is content the project ships, reviewed before it was shipped: it is loaded published, its
# versions marked as written and approved by two distinct system names so the four-eyes rule holds.
STARTER_AUTHOR = "system:starter-set"
STARTER_REVIEWER = "system:starter-load"


async def load_articles(session: AsyncSession, clock: Clock, articles: list[ArticleCreate]) -> tuple[int, int]:
    """Each article published as its first version, unless its key exists; (loaded, already there)."""
    now = clock.now()
    for data in articles:
        check_category(data.category)
    present = await repository.existing_keys(session, [data.key for data in articles])
    fresh = [data for data in articles if data.key not in present]
    made = [KnowledgeArticle(key=data.key, category=data.category, status="published", latest_version_no=1,
                             published_version_no=1, valid_from=data.valid_from, valid_until=data.valid_until,
                             created_by=STARTER_AUTHOR, created_at=now, updated_at=now) for data in fresh]
    repository.add(session, *made)
    await session.flush()
    repository.add(session, *[KnowledgeVersion(
        article_id=article.id, version_no=1, state="approved", title=data.title, body=data.body,
        questions=_questions(data.questions), author=STARTER_AUTHOR, submitted_by=STARTER_AUTHOR,
        submitted_at=now, reviewed_by=STARTER_REVIEWER, reviewed_at=now, review_note="shipped starter set",
        created_at=now) for article, data in zip(made, fresh, strict=True)])
    if made:
        await repository.bump_generation(session)
    await session.flush()
    return len(made), len(articles) - len(made)
