"""`cityhealth knowledge …`: load the starter knowledge base, and measure it against its labelled questions."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.hotline import knowledge
from cityhealth.hotline.knowledge_schemas import ArticleCreate
from cityhealth.hotline.knowledge_starter import starter_articles

app = typer.Typer(help="The hotline's knowledge base.", no_args_is_help=True)
console = Console()


def starter_set() -> list[ArticleCreate]:
    return [ArticleCreate(key=a.key, category=a.category, title=a.title, body=a.body, questions=list(a.questions))
            for a in starter_articles()]


@app.command("load-starter")
def load_starter() -> None:
    """Load the shipped starter articles, published (an article whose key is there already is left alone)."""
    settings = load_settings()

    async def run() -> tuple[int, int]:
        async with checked_database(settings) as database, database.transaction() as session:
            return await knowledge.load_articles(session, SystemClock(), starter_set())

    loaded, present = asyncio.run(run())
    console.print(f"knowledge base: {loaded} starter articles loaded, {present} already there")
