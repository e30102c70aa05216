"""The issue workflow: draft an issue for a month, publish it (its editions rendered once, archived with their
hashes, frozen), correct a published issue by a new numbered revision, and serve what was published.

Numbering continues from the region's last published issue: 第N期 counts within the year of publication and
starts again at 1 in a new year, 总第M期 never restarts. Only a region's first issue is numbered by hand.
"""

from __future__ import annotations

import functools
import hashlib

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.reporting import month_loads, profiles, render_pdf, repository, service
from cityhealth.reporting.models import BulletinEdition, BulletinIssue
from cityhealth.reporting.schemas import CorrectionIn, EditionRead, IssueDraftIn, IssueRead
from cityhealth.reporting.service import Edition
from cityhealth.reporting.tables import Issue
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

RESOURCE = "bulletin_issue"
DRAFT, PUBLISHED = "draft", "published"


def _by(principal: Principal | None, operator: str | None = None) -> str:
    return operator or (principal.subject if principal is not None else "system")


def _audit(session: AsyncSession, clock: Clock, principal: Principal | None, operator: str | None, action: Action,
           issue_id: int, detail: str) -> None:
    """An issue's audit event, by the editor's principal or by the operator at the command line."""
    record(session, clock, principal, action, RESOURCE, resource_id=issue_id, detail=detail,
           actor=operator, actor_kind="operator" if operator else None)


async def _read(session: AsyncSession, issue: BulletinIssue) -> IssueRead:
    editions = [EditionRead.model_validate(e) for e in await repository.editions_of(session, issue.id)]
    return IssueRead.model_validate(issue).model_copy(update={"editions": editions})


def _next_numbers(last: BulletinIssue | None, data: IssueDraftIn) -> tuple[int, int]:
    """第N期 and 总第M期 of a new issue: continued from `last`, or as given for a region's first issue."""
    year = data.published_on.year
    if last is None:
        if data.number is None or data.total_number is None:
            raise ValidationFailed("the region's first issue needs its numbers (第N期 and 总第M期)",
                                   field="number", value=data.number, rule="bulletin.issue.first_numbers")
        return data.number, data.total_number
    number = last.number + 1 if last.year == year else 1
    total = last.total_number + 1
    for given, expected, name in ((data.number, number, "number"), (data.total_number, total, "total_number")):
        if given is not None and given != expected:
            raise Conflict(f"the issue after 总第{last.total_number}期 is numbered {expected}, not {given}",
                           field=name, value=given, rule="bulletin.issue.number_sequence")
    if last.year > year:
        raise Conflict(f"the last issue was published in {last.year}; an issue dated {data.published_on} "
                       "would number backwards", field="published_on", value=str(data.published_on),
                       rule="bulletin.issue.number_sequence")
    return number, total


async def draft_issue(session: AsyncSession, clock: Clock, principal: Principal | None,
                      data: IssueDraftIn, *, operator: str | None = None) -> IssueRead:
    """The month's draft, created or rewritten (the same draft again changes nothing); a month already
    published is corrected, not drafted again."""
    month_issues = await repository.issues_of_month(session, data.region_code, data.month)
    if any(issue.status == PUBLISHED for issue in month_issues):
        raise Conflict(f"{data.month} is published; a change is a correction of it", field="month",
                       value=data.month, rule="bulletin.issue.published")
    last = await repository.last_published_issue(session, data.region_code)
    number, total = _next_numbers(last, data)
    draft = next((issue for issue in month_issues if issue.status == DRAFT), None)
    if draft is None:
        draft = BulletinIssue(region_code=data.region_code, month=data.month, revision=0, status=DRAFT,
                              created_at=clock.now(), created_by=_by(principal, operator), year=0, number=0,
                              total_number=0, published_on=data.published_on, news_markdown="")
        session.add(draft)
    wanted = (data.published_on.year, number, total, data.published_on, data.news_markdown)
    if (draft.year, draft.number, draft.total_number, draft.published_on, draft.news_markdown) != wanted:
        draft.year, draft.number, draft.total_number, draft.published_on, draft.news_markdown = wanted
        await session.flush()
        _audit(session, clock, principal, operator, Action.UPDATE, draft.id, "draft")
    return await _read(session, draft)


def _news_of(issue: BulletinIssue) -> str:
    if issue.correction_note is None:
        return issue.news_markdown
    return f"## 更正说明（第{issue.revision}次修订）\n\n{issue.correction_note}\n\n{issue.news_markdown}"


async def render_issue(session: AsyncSession, issue: BulletinIssue, fmt: Edition) -> bytes:
    """An edition of the issue from today's figures (a draft's preview; publishing archives these bytes)."""
    data = await service.build_bulletin(session, issue.month, region_code=issue.region_code)
    profile = await profiles.profile_for_issue(session, issue.region_code)
    numbering = Issue(issue.number, issue.total_number, issue.published_on)
    news = _news_of(issue)

    def run() -> bytes:
        return service.render(data, fmt, news, issue=numbering, profile=profile)

    return await anyio.to_thread.run_sync(run)


async def publish_issue(session: AsyncSession, clock: Clock, principal: Principal | None,
                        issue_id: int, *, operator: str | None = None) -> IssueRead:
    """Render every edition once, archive it with its SHA-256 and freeze the issue; publishing a published
    issue again changes nothing, and a month still being loaded is refused (its figures are partial)."""
    issue = await repository.issue_for_update(session, issue_id)
    if issue is None:
        raise NotFound("no such issue", field="issue_id", value=issue_id, rule="bulletin.issue.exists")
    if issue.status == PUBLISHED:
        return await _read(session, issue)
    last = await repository.last_published_issue(session, issue.region_code)
    if issue.revision == 0 and last is not None and (
            issue.total_number <= last.total_number or (issue.year == last.year and issue.number <= last.number)):
        raise Conflict(f"总第{issue.total_number}期 would come after 总第{last.total_number}期: draft it again to "
                       "renumber it", field="total_number", value=issue.total_number,
                       rule="bulletin.issue.number_sequence")
    month_loads.refuse_partial(await month_loads.get(session, issue.month))
    editions = [Edition.HTML, Edition.DOCX, Edition.MD, Edition.JSON]
    if render_pdf.office_program() is not None:  # the PDF edition where LibreOffice is installed (scripts/office-deps)
        editions.append(Edition.PDF)
    for fmt in editions:
        content = await render_issue(session, issue, fmt)
        session.add(BulletinEdition(issue_id=issue.id, format=fmt.value, content=content, size=len(content),
                                    sha256=hashlib.sha256(content).hexdigest()))
    issue.status, issue.published_at, issue.published_by = PUBLISHED, clock.now(), _by(principal, operator)
    await session.flush()
    _audit(session, clock, principal, operator, Action.UPDATE, issue.id,
           f"published {issue.year}年第{issue.number}期 revision {issue.revision}")
    return await _read(session, issue)


def _published_as(issue: BulletinIssue, data: IssueDraftIn) -> bool:
    """Whether a published revision carries `data`: its date and text, and its numbers where `data` gives them."""
    return (issue.published_on == data.published_on and issue.news_markdown == data.news_markdown
            and data.number in (None, issue.number) and data.total_number in (None, issue.total_number))


async def publish_month(session: AsyncSession, clock: Clock, principal: Principal | None, data: IssueDraftIn, *,
                        operator: str | None = None) -> tuple[IssueRead, bool]:
    """Draft the month's issue and publish it in one step (the command line's way, as the console's two steps);
    a month already published with this date, text and numbers is left as it is: (the issue, False). Published
    otherwise, it is refused: a change to a published issue is a correction."""
    revisions = await repository.issues_of_month(session, data.region_code, data.month)
    published = [issue for issue in revisions if issue.status == PUBLISHED]
    if published:
        same = next((issue for issue in published if _published_as(issue, data)), None)
        if same is None:
            latest = published[0]
            raise Conflict(f"{data.month} is published as {latest.year}年第{latest.number}期 with another date, "
                           "text or numbers; a change is a correction of it", field="month", value=data.month,
                           rule="bulletin.issue.published")
        return await _read(session, published[0]), False
    draft = await draft_issue(session, clock, principal, data, operator=operator)
    return await publish_issue(session, clock, principal, draft.id, operator=operator), True


async def correct_issue(session: AsyncSession, clock: Clock, principal: Principal | None, issue_id: int,
                        data: CorrectionIn) -> IssueRead:
    """A draft of the next revision of a published issue: the same numbers, the note saying what changed."""
    issue = await repository.issue_for_update(session, issue_id)
    if issue is None or issue.status != PUBLISHED:
        raise NotFound("no such published issue", field="issue_id", value=issue_id,
                       rule="bulletin.issue.published_exists")
    revisions = await repository.issues_of_month(session, issue.region_code, issue.month)
    if revisions[0].status == DRAFT:
        raise Conflict("a correction of this issue is already drafted", field="issue_id", value=issue_id,
                       rule="bulletin.issue.correction_pending")
    correction = BulletinIssue(
        region_code=issue.region_code, month=issue.month, year=issue.year, number=issue.number,
        total_number=issue.total_number, revision=revisions[0].revision + 1, status=DRAFT,
        published_on=issue.published_on, correction_note=data.note,
        news_markdown=data.news_markdown if data.news_markdown is not None else revisions[0].news_markdown,
        created_at=clock.now(), created_by=_by(principal))
    session.add(correction)
    await session.flush()
    record(session, clock, principal, Action.CREATE, RESOURCE, resource_id=correction.id,
           detail=f"correction {correction.revision} of issue {issue.id}")
    return await _read(session, correction)


async def published_edition(session: AsyncSession, region_code: str | None, month: str,
                            fmt: Edition) -> tuple[IssueRead, bytes] | None:
    """The latest published revision of the month's issue (of the region, or of any: None) and its archived
    edition, or None when the month has no published issue."""
    latest = next((issue for issue in await repository.issues_of_month(session, region_code, month)
                   if issue.status == PUBLISHED), None)
    if latest is None:
        return None
    stored = await repository.edition(session, latest.id, fmt.value)
    if stored is None:
        raise NotFound(f"the issue of {month} was published without a {fmt.value} edition", field="format",
                       value=fmt.value, rule="bulletin.issue.edition_exists")
    return await _read(session, latest), stored.content


async def unpublished_edition(session: AsyncSession, month: str, fmt: Edition) -> tuple[IssueRead | None, bytes]:
    """For an editor, a month without a published issue as the public would see it once published: its draft
    rendered from today's figures (as the console's preview), or, with no draft yet, the figures alone."""
    draft = next((issue for issue in await repository.issues_of_month(session, None, month)
                  if issue.status == DRAFT), None)
    if draft is not None:
        return await _read(session, draft), await render_issue(session, draft, fmt)
    data = await service.build_bulletin(session, month)
    profile = await profiles.profile_for_issue(session, data.region.code)
    return None, await anyio.to_thread.run_sync(functools.partial(service.render, data, fmt, profile=profile))


async def published_issues(session: AsyncSession, region_code: str | None = None) -> list[IssueRead]:
    """Every published issue, its latest revision only, newest first."""
    seen: set[tuple[str, int]] = set()
    latest: list[IssueRead] = []
    for issue in await repository.published_issues(session, region_code):
        if (issue.region_code, issue.total_number) not in seen:
            seen.add((issue.region_code, issue.total_number))
            latest.append(await _read(session, issue))
    return latest


async def issue_edition(session: AsyncSession, issue_id: int, fmt: Edition) -> tuple[IssueRead, bytes]:
    """For the editor: a published issue's archived edition, or a draft's preview from today's figures."""
    issue = await session.get(BulletinIssue, issue_id)
    if issue is None:
        raise NotFound("no such issue", field="issue_id", value=issue_id, rule="bulletin.issue.exists")
    if issue.status == PUBLISHED:
        stored = await repository.edition(session, issue.id, fmt.value)
        if stored is None:
            raise NotFound(f"the issue was published without a {fmt.value} edition", field="format",
                           value=fmt.value, rule="bulletin.issue.edition_exists")
        return await _read(session, issue), stored.content
    return await _read(session, issue), await render_issue(session, issue, fmt)


async def drafts(session: AsyncSession) -> list[IssueRead]:
    """The issues and corrections being prepared (the editor's console lists them)."""
    return [await _read(session, issue) for issue in await repository.draft_issues(session)]


async def get_issue(session: AsyncSession, issue_id: int) -> tuple[IssueRead, str]:
    """An issue and its editorial Markdown, for the editor."""
    issue = await session.get(BulletinIssue, issue_id)
    if issue is None:
        raise NotFound("no such issue", field="issue_id", value=issue_id, rule="bulletin.issue.exists")
    return await _read(session, issue), issue.news_markdown
