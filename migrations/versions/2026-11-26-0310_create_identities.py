"""Create the identities: staff users and sessions, resident accounts and sessions, machine clients, used jtis.

Revision ID: 20261126_0310
Revises: 20261126_0300
Create Date: 2026-11-26 03:10:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0310"
down_revision: str | None = "20261126_0300"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("roles", sa.String(length=255), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("totp_secret_enc", sa.String(length=255), nullable=True),
        sa.Column("totp_pending_enc", sa.String(length=255), nullable=True),
        sa.Column("totp_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_staff_users_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_users_username")),
    )
    op.create_index(op.f("ix_staff_users_organization_id"), "staff_users", ["organization_id"], unique=False)
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("source_address", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["staff_users.id"], name=op.f("fk_staff_sessions_staff_user_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
    )
    op.create_index(op.f("ix_staff_sessions_staff_user_id"), "staff_sessions", ["staff_user_id"], unique=False)
    op.create_table(
        "resident_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("phone_enc", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_resident_accounts_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_accounts")),
        sa.UniqueConstraint("resident_id", name=op.f("uq_resident_accounts_resident_id")),
    )
    op.create_index(op.f("ix_resident_accounts_phone_hash"), "resident_accounts", ["phone_hash"], unique=False)
    op.create_table(
        "resident_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("resident_account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("source_address", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_account_id"],
            ["resident_accounts.id"],
            name=op.f("fk_resident_sessions_resident_account_id_resident_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_sessions")),
    )
    op.create_index(
        op.f("ix_resident_sessions_resident_account_id"), "resident_sessions", ["resident_account_id"], unique=False
    )
    op.create_table(
        "machine_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("client_app_id", sa.Integer(), nullable=True),
        sa.Column("scopes", sa.String(length=1024), nullable=False),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("jwks_url", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("jwks IS NOT NULL OR jwks_url IS NOT NULL", name=op.f("ck_machine_clients_has_keys")),
        sa.ForeignKeyConstraint(
            ["client_app_id"], ["client_apps.id"], name=op.f("fk_machine_clients_client_app_id_client_apps")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_machine_clients_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_machine_clients_client_id")),
    )
    op.create_index(op.f("ix_machine_clients_client_app_id"), "machine_clients", ["client_app_id"], unique=False)
    op.create_index(
        op.f("ix_machine_clients_organization_id"), "machine_clients", ["organization_id"], unique=False
    )
    op.create_table(
        "used_jtis",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_used_jtis")),
    )
    op.create_index(op.f("ix_used_jtis_expires_at"), "used_jtis", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_used_jtis_expires_at"), table_name="used_jtis")
    op.drop_table("used_jtis")
    op.drop_index(op.f("ix_machine_clients_organization_id"), table_name="machine_clients")
    op.drop_index(op.f("ix_machine_clients_client_app_id"), table_name="machine_clients")
    op.drop_table("machine_clients")
    op.drop_index(op.f("ix_resident_sessions_resident_account_id"), table_name="resident_sessions")
    op.drop_table("resident_sessions")
    op.drop_index(op.f("ix_resident_accounts_phone_hash"), table_name="resident_accounts")
    op.drop_table("resident_accounts")
    op.drop_index(op.f("ix_staff_sessions_staff_user_id"), table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_index(op.f("ix_staff_users_organization_id"), table_name="staff_users")
    op.drop_table("staff_users")
