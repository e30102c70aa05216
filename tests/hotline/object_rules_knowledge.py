"""Object rules of the knowledge base's read routes: its articles and questions belong to no one caller."""

from __future__ import annotations

from tests.security.objects import not_object_scoped

not_object_scoped("GET", "/api/hotline/kb/categories", "a fixed code table, the same for every reader")
not_object_scoped("GET", "/api/hotline/kb/articles",
                  "the knowledge base is the hotline's shared content: every editor (hotline.kb.edit) works on every "
                  "article, drafts included; no article holds personal data")
not_object_scoped("GET", "/api/hotline/kb/articles/{article_id}",
                  "an article with its versions, shared by every editor as the list is")
not_object_scoped("GET", "/api/hotline/kb/search",
                  "published answers for the public, searched by every agent and editor (hotline.kb.read)")
not_object_scoped("GET", "/api/hotline/kb/unanswered",
                  "the editors' shared work list; the questions' personal numbers are masked when stored")
not_object_scoped("GET", "/api/hotline/kb/lexicon",
                  "the dictionary words and synonym groups the search uses, shared by every editor; no personal data")
not_object_scoped("GET", "/api/hotline/kb/lexicon/{kind}/{term}/history",
                  "a word's or synonym group's versions, shared by every editor as the lexicon is")
