"""Create the hotline knowledge base: articles, versions, self-service queries, unanswered questions, its state.

Revision ID: 20261205_0710
Revises: 20261205_0700
Create Date: 2026-12-05 07:10:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0710"
down_revision: str | None = "20261205_0700"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CATEGORIES = ("booking", "hours", "hospital", "vaccination", "insurance", "public_health", "maternal_child",
               "hotline", "other")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "hotline_kb_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("latest_version_no", sa.Integer(), nullable=False),
        sa.Column("published_version_no", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_in("status", ("draft", "published", "unpublished")),
                           name=op.f("ck_hotline_kb_articles_status")),
        sa.CheckConstraint(_in("category", _CATEGORIES), name=op.f("ck_hotline_kb_articles_category")),
        sa.CheckConstraint("valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from",
                           name=op.f("ck_hotline_kb_articles_validity")),
        sa.CheckConstraint("status <> 'published' OR published_version_no IS NOT NULL",
                           name=op.f("ck_hotline_kb_articles_published_has_version")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_kb_articles")),
        sa.UniqueConstraint("key", name=op.f("uq_hotline_kb_articles_key")),
    )
    op.create_index("ix_hotline_kb_articles_status_updated_at", "hotline_kb_articles", ["status", "updated_at"],
                    unique=False)
    op.create_table(
        "hotline_kb_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("questions", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=96), nullable=False),
        sa.Column("submitted_by", sa.String(length=96), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=96), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_in("state", ("draft", "in_review", "approved", "rejected")),
                           name=op.f("ck_hotline_kb_versions_state")),
        sa.CheckConstraint("reviewed_by IS NULL OR submitted_by IS NULL OR reviewed_by <> submitted_by",
                           name=op.f("ck_hotline_kb_versions_four_eyes")),
        sa.ForeignKeyConstraint(["article_id"], ["hotline_kb_articles.id"],
                                name=op.f("fk_hotline_kb_versions_article_id_hotline_kb_articles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_kb_versions")),
        sa.UniqueConstraint("article_id", "version_no", name=op.f("uq_hotline_kb_versions_article_id_version_no")),
    )
    op.create_table(
        "hotline_kb_unanswered",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("sample_text", sa.String(length=200), nullable=False),
        sa.Column("asked_count", sa.Integer(), nullable=False),
        sa.Column("first_asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("resolved_by", sa.String(length=96), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(_in("status", ("open", "resolved")), name=op.f("ck_hotline_kb_unanswered_status")),
        sa.CheckConstraint("asked_count >= 1", name=op.f("ck_hotline_kb_unanswered_asked_count")),
        sa.ForeignKeyConstraint(["article_id"], ["hotline_kb_articles.id"],
                                name=op.f("fk_hotline_kb_unanswered_article_id_hotline_kb_articles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_kb_unanswered")),
        sa.UniqueConstraint("group_key", name=op.f("uq_hotline_kb_unanswered_group_key")),
    )
    op.create_index("ix_hotline_kb_unanswered_status_asked_count", "hotline_kb_unanswered",
                    ["status", "asked_count"], unique=False)
    op.create_table(
        "hotline_kb_queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("utterance_id", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=96), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("unanswered_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["article_id"], ["hotline_kb_articles.id"],
                                name=op.f("fk_hotline_kb_queries_article_id_hotline_kb_articles")),
        sa.ForeignKeyConstraint(["unanswered_id"], ["hotline_kb_unanswered.id"],
                                name=op.f("fk_hotline_kb_queries_unanswered_id_hotline_kb_unanswered")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_kb_queries")),
        sa.UniqueConstraint("utterance_id", name=op.f("uq_hotline_kb_queries_utterance_id")),
    )
    op.create_index("ix_hotline_kb_queries_asked_at", "hotline_kb_queries", ["asked_at"], unique=False)
    state = op.create_table(
        "hotline_kb_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_hotline_kb_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_kb_state")),
    )
    op.bulk_insert(state, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("hotline_kb_state")
    op.drop_index("ix_hotline_kb_queries_asked_at", table_name="hotline_kb_queries")
    op.drop_table("hotline_kb_queries")
    op.drop_index("ix_hotline_kb_unanswered_status_asked_count", table_name="hotline_kb_unanswered")
    op.drop_table("hotline_kb_unanswered")
    op.drop_table("hotline_kb_versions")
    op.drop_index("ix_hotline_kb_articles_status_updated_at", table_name="hotline_kb_articles")
    op.drop_table("hotline_kb_articles")
