"""Add the knowledge base's lexicon: editors' dictionary words and synonym groups, each with its versions.

Revision ID: 20261207_0500
Revises: 20261207_0200
Create Date: 2026-12-07 05:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0500"
down_revision: str | None = "20261207_0200"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hotline_kb_lexicon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("term", sa.String(length=40), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("variants", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(length=96), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('word', 'synonyms')", name=op.f("ck_hotline_kb_lexicon_kind")),
        sa.CheckConstraint("version_no >= 1", name=op.f("ck_hotline_kb_lexicon_version_no")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_kb_lexicon")),
        sa.UniqueConstraint("kind", "term", "version_no", name=op.f("uq_hotline_kb_lexicon_kind_term_version_no")),
    )


def downgrade() -> None:
    op.drop_table("hotline_kb_lexicon")
