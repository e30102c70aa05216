"""Add the bulletin's publication profiles (the publisher's block each issue prints) and its issues with their
frozen editions.

Revision ID: 20261209_0100
Revises: 20261208_0610
Create Date: 2026-12-09 01:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261209_0100"
down_revision: str | None = "20261208_0610"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "publication_profiles",
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("publisher", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("postcode", sa.String(length=6), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("fax", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("website", sa.String(length=500), nullable=False),
        sa.Column("responsible_editor", sa.String(length=40), nullable=False),
        sa.Column("print_run", sa.Integer(), nullable=False),
        sa.Column("qr1_caption", sa.String(length=40), nullable=False),
        sa.Column("qr1_url", sa.String(length=500), nullable=False),
        sa.Column("qr2_caption", sa.String(length=40), nullable=False),
        sa.Column("qr2_url", sa.String(length=500), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=96), nullable=False),
        sa.PrimaryKeyConstraint("region_code", name=op.f("pk_publication_profiles")),
    )
    op.create_table(
        "bulletin_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("total_number", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("published_on", sa.Date(), nullable=False),
        sa.Column("news_markdown", sa.Text(), nullable=False),
        sa.Column("correction_note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(length=96), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletin_issues")),
        sa.UniqueConstraint("region_code", "total_number", "revision",
                            name=op.f("uq_bulletin_issues_region_code_total_number_revision")),
        sa.UniqueConstraint("region_code", "year", "number", "revision",
                            name=op.f("uq_bulletin_issues_region_code_year_number_revision")),
    )
    op.create_index(op.f("ix_bulletin_issues_region_code"), "bulletin_issues", ["region_code"])
    op.create_table(
        "bulletin_editions",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["bulletin_issues.id"],
                                name=op.f("fk_bulletin_editions_issue_id_bulletin_issues")),
        sa.PrimaryKeyConstraint("issue_id", "format", name=op.f("pk_bulletin_editions")),
    )


def downgrade() -> None:
    op.drop_table("bulletin_editions")
    op.drop_index(op.f("ix_bulletin_issues_region_code"), table_name="bulletin_issues")
    op.drop_table("bulletin_issues")
    op.drop_table("publication_profiles")
