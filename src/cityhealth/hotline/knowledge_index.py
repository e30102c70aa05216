"""The process's search index over the published articles, rebuilt when what is published changes."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.hotline import knowledge_repository as repository
from cityhealth.hotline.knowledge_search import Analyzer, Document, SearchIndex, starter_dictionary, starter_synonyms
from cityhealth.hotline.knowledge_starter import name_synonyms, organization_synonyms, starter_names
from cityhealth.registry import service as registry


class KnowledgeIndex:
    """One per worker process (app.state): the analyzer with the registry's names, and the current index."""

    def __init__(self) -> None:
        self._analyzer: Analyzer | None = None
        self._index: SearchIndex | None = None
        self._generation: int | None = None
        self._words: frozenset[str] = frozenset()
        self._lexicon: frozenset[tuple[str, str, str]] = frozenset()
        self._lock = asyncio.Lock()

    async def current(self, session: AsyncSession) -> SearchIndex:
        """The index of what is published now; one cheap query when nothing changed."""
        generation = await repository.publication_generation(session)
        if self._index is not None and generation == self._generation:
            return self._index
        async with self._lock:
            if self._index is None or generation != self._generation:
                self._index = await self._rebuild(session)
                self._generation = generation
            return self._index

    async def _rebuild(self, session: AsyncSession) -> SearchIndex:
        organizations = await registry.organization_words(session)
        departments = await registry.department_names(session)
        # Short names and the forms callers shorten names to fold into the full name, so any finds the articles
        # naming it: the registry's and the starter set's hospitals told apart together.
        short_names = name_synonyms([*starter_names(), *organizations])
        words = frozenset({name for name, _ in organizations} | set(departments) | set(short_names))
        # The editors' words and synonym groups (knowledge_lexicon), added to the shipped ones.
        lexicon = frozenset((e.kind, e.term, e.variants) for e in await repository.lexicon_current(session)
                            if e.active)
        previous = self._index
        if self._analyzer is None:
            self._analyzer = starter_analyzer()
        if words != self._words or lexicon != self._lexicon:
            analyzer = self._analyzer
            synonyms = starter_synonyms() | short_names
            base = dict(synonyms)
            for kind, term, variants in sorted(lexicon):
                if kind == "synonyms":  # an editor's group overrides the shipped one a variant was in
                    synonyms.update(dict.fromkeys(variants.split("\n"), base.get(term, term)))
            analyzer.synonyms = synonyms
            added = {term for kind, term, _ in lexicon if kind == "word"}
            dropped = {term for kind, term, _ in self._lexicon if kind == "word"} - added
            analyzer.remove_words(dropped - words - set(starter_dictionary()) - set(synonyms) - set(synonyms.values()))
            analyzer.add_words(words | added | set(synonyms) | set(synonyms.values()))
            analyzer.add_entities({name for name, _ in organizations} | set(short_names.values()))
            self._words, self._lexicon = words, lexicon
            previous = None  # new words cut differently: every article is cut again
        rows = await repository.published(session)
        documents = [Document(article.id, version.version_no, article.category, version.title, version.questions,
                              version.body, article.valid_from, article.valid_until, article.key)
                     for article, version in rows]
        # Cutting every article takes seconds at tens of thousands of them: off the event loop, so that the
        # process's other requests go on meanwhile (searches wait for the index behind the lock).
        return await asyncio.to_thread(SearchIndex.build, self._analyzer, documents, previous)


def starter_analyzer() -> Analyzer:
    """The analyzer before the registry is read: the starter set names the demo city's hospitals, so their
    names (and the forms callers make of them) are known from the start."""
    analyzer = Analyzer(starter_dictionary(), starter_synonyms() | organization_synonyms())
    analyzer.add_entities(name for name, _ in starter_names())
    return analyzer


def index_of(state: Any) -> KnowledgeIndex:
    """The worker process's index, kept in the app's state (made on first use): the knowledge routes' and the
    agent desk's."""
    found: KnowledgeIndex | None = getattr(state, "hotline_knowledge_index", None)
    if found is None:
        found = state.hotline_knowledge_index = KnowledgeIndex()
    return found
