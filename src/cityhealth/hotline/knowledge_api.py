"""Knowledge-base routes: editors write and review articles, agents search, the IVR asks for self-service answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from cityhealth.context import ClockDep, SessionDep
from cityhealth.db.types import PageOffset, RowId
from cityhealth.hotline import knowledge, knowledge_answers, knowledge_lexicon
from cityhealth.hotline.knowledge_index import KnowledgeIndex, index_of
from cityhealth.hotline.knowledge_schemas import (
    ArticleCreate,
    ArticlePage,
    ArticleRead,
    ArticleUpdate,
    LexiconEntryRead,
    LexiconRead,
    SearchHit,
    SelfServiceAnswer,
    SelfServiceAsk,
    SynonymGroupWrite,
    Transition,
    UnansweredPage,
    VersionCreate,
)
from cityhealth.security.dependencies import require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/hotline/kb", tags=["hotline knowledge base"])
Reader = Annotated[Principal, Depends(require(Scope.HOTLINE_KB_READ))]
Editor = Annotated[Principal, Depends(require(Scope.HOTLINE_KB_EDIT))]
Reviewer = Annotated[Principal, Depends(require(Scope.HOTLINE_KB_REVIEW))]
Ivr = Annotated[Principal, Depends(require(Scope.HOTLINE_SELF_SERVICE))]
Limit = Annotated[int, Query(ge=1, le=200)]
Term = Annotated[str, Path(min_length=1, max_length=40)]


def knowledge_index(request: Request) -> KnowledgeIndex:
    """The worker process's index (made on first use)."""
    return index_of(request.app.state)


IndexDep = Annotated[KnowledgeIndex, Depends(knowledge_index)]


@router.get("/categories", response_model=dict[str, str], summary="The article categories: code -> name")
async def categories(_: Reader) -> dict[str, str]:
    return knowledge.categories()


@router.get("/articles", response_model=ArticlePage, summary="Articles with their latest version")
async def list_articles(_: Editor, session: SessionDep, category: Annotated[str | None, Query(max_length=24)] = None,
                        article_status: Annotated[str | None, Query(alias="status", pattern="^(draft|published|"
                                                                    "unpublished)$")] = None,
                        limit: Limit = 50, offset: PageOffset = 0) -> ArticlePage:
    return await knowledge.list_articles(session, category=category, status=article_status, limit=limit,
                                         offset=offset)


@router.post("/articles", response_model=ArticleRead, status_code=status.HTTP_201_CREATED,
             summary="Write an article (its first version, a draft); a retry with the same key is the same article")
async def create_article(principal: Editor, session: SessionDep, clock: ClockDep, data: ArticleCreate) -> ArticleRead:
    article, _ = await knowledge.create_article(session, clock, principal, data)
    return article


@router.get("/articles/{article_id}", response_model=ArticleRead, summary="An article with every version")
async def read_article(_: Editor, session: SessionDep, article_id: RowId) -> ArticleRead:
    return await knowledge.read_article(session, article_id)


@router.patch("/articles/{article_id}", response_model=ArticleRead, summary="Change category or validity dates")
async def update_article(_: Editor, session: SessionDep, clock: ClockDep, article_id: RowId,
                         data: ArticleUpdate) -> ArticleRead:
    return await knowledge.update_article(session, clock, data, article_id)


@router.post("/articles/{article_id}/versions", response_model=ArticleRead, status_code=status.HTTP_201_CREATED,
             summary="Write a new version (a draft)")
async def add_version(principal: Editor, session: SessionDep, clock: ClockDep, article_id: RowId,
                      data: VersionCreate) -> ArticleRead:
    return await knowledge.add_version(session, clock, principal, article_id, data)


@router.post("/articles/{article_id}/submit", response_model=ArticleRead, summary="Submit a version for review")
async def submit(principal: Editor, session: SessionDep, clock: ClockDep, article_id: RowId,
                 data: Transition) -> ArticleRead:
    return await knowledge.submit(session, clock, principal, article_id, data)


@router.post("/articles/{article_id}/approve", response_model=ArticleRead,
             summary="Approve a version another editor submitted")
async def approve(principal: Reviewer, session: SessionDep, clock: ClockDep, article_id: RowId,
                  data: Transition) -> ArticleRead:
    return await knowledge.review(session, clock, principal, article_id, data, approve=True)


@router.post("/articles/{article_id}/reject", response_model=ArticleRead,
             summary="Send a version back to its author, with a note")
async def reject(principal: Reviewer, session: SessionDep, clock: ClockDep, article_id: RowId,
                 data: Transition) -> ArticleRead:
    return await knowledge.review(session, clock, principal, article_id, data, approve=False)


@router.post("/articles/{article_id}/publish", response_model=ArticleRead, summary="Publish an approved version")
async def publish(_: Reviewer, session: SessionDep, clock: ClockDep, article_id: RowId,
                  data: Transition) -> ArticleRead:
    return await knowledge.publish(session, clock, article_id, data)


@router.post("/articles/{article_id}/unpublish", response_model=ArticleRead, summary="Take an article down")
async def unpublish(_: Reviewer, session: SessionDep, clock: ClockDep, article_id: RowId) -> ArticleRead:
    return await knowledge.unpublish(session, clock, article_id)


@router.get("/search", response_model=list[SearchHit], summary="Search the published articles valid today")
async def search(_: Reader, session: SessionDep, clock: ClockDep, index: IndexDep,
                 q: Annotated[str, Query(max_length=1000)],
                 category: Annotated[str | None, Query(max_length=24)] = None,
                 limit: Annotated[int, Query(ge=1, le=50)] = 10) -> list[SearchHit]:
    return await knowledge_answers.search(session, clock, index, q, category=category, limit=limit)


@router.post("/self-service", response_model=SelfServiceAnswer,
             summary="The IVR's recognised question: the best answer with its confidence, or no answer")
async def self_service(principal: Ivr, session: SessionDep, clock: ClockDep, index: IndexDep,
                       ask: SelfServiceAsk) -> SelfServiceAnswer:
    return await knowledge_answers.self_service(session, clock, principal, index, ask)


@router.get("/unanswered", response_model=UnansweredPage,
            summary="Self-service questions without an answer, grouped, most asked first")
async def list_unanswered(_: Editor, session: SessionDep,
                          question_status: Annotated[str | None, Query(alias="status", max_length=16)] = "open",
                          limit: Limit = 50, offset: PageOffset = 0) -> UnansweredPage:
    return await knowledge.list_unanswered(session, status=question_status, limit=limit, offset=offset)


@router.post("/unanswered/{question_id}/article", response_model=ArticleRead, status_code=status.HTTP_201_CREATED,
             summary="Turn a group of unanswered questions into a draft article")
async def article_from_unanswered(principal: Editor, session: SessionDep, clock: ClockDep, question_id: RowId,
                                  data: ArticleCreate) -> ArticleRead:
    article, _ = await knowledge.article_from_unanswered(session, clock, principal, question_id, data)
    return article


@router.get("/lexicon", response_model=LexiconRead,
            summary="The editors' dictionary words and synonym groups in force (added to the shipped ones)")
async def read_lexicon(_: Editor, session: SessionDep) -> LexiconRead:
    return await knowledge_lexicon.lexicon(session)


@router.put("/lexicon/words/{word}", response_model=LexiconEntryRead,
            summary="Add a word to the custom dictionary; a retry adds no version")
async def put_word(principal: Editor, session: SessionDep, clock: ClockDep, word: Term) -> LexiconEntryRead:
    return await knowledge_lexicon.put_word(session, clock, principal, word)


@router.put("/lexicon/synonyms/{term}", response_model=LexiconEntryRead,
            summary="Set the synonym group folding its variants into `term`; a retry adds no version")
async def put_synonyms(principal: Editor, session: SessionDep, clock: ClockDep, term: Term,
                       data: SynonymGroupWrite) -> LexiconEntryRead:
    return await knowledge_lexicon.put_synonyms(session, clock, principal, term, data.variants)


@router.delete("/lexicon/{kind}/{term}", response_model=LexiconEntryRead,
               summary="Take a word or synonym group out of force (a version that is not active)")
async def remove_entry(principal: Editor, session: SessionDep, clock: ClockDep,
                       kind: Annotated[str, Path(pattern="^(words|synonyms)$")], term: Term) -> LexiconEntryRead:
    return await knowledge_lexicon.remove(session, clock, principal, _lexicon_kind(kind), term)


@router.get("/lexicon/{kind}/{term}/history", response_model=list[LexiconEntryRead],
            summary="Every version of a word or synonym group, oldest first")
async def lexicon_history(_: Editor, session: SessionDep, kind: Annotated[str, Path(pattern="^(words|synonyms)$")],
                          term: Term) -> list[LexiconEntryRead]:
    return await knowledge_lexicon.history(session, _lexicon_kind(kind), term)


def _lexicon_kind(segment: str) -> str:
    return "word" if segment == "words" else "synonyms"
