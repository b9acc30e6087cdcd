"""Operator review: ``review_user``, ``review`` (one row per decision) and ``review_region``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Three new tables; nothing existing changes. A decision is never an edit: ``review`` rows are
only added (a later decision on the same inspection names the one it ``supersedes``), and the
inspection keeps the model's verdict. Deleting an inspection (retention) deletes its
decisions with it; users are disabled, never deleted, because decisions name them.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "review_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("role IN ('operator', 'engineer')", name="ck_review_user_role"),
        sa.PrimaryKeyConstraint("id", name="pk_review_user"),
        sa.UniqueConstraint("name", name="uq_review_user_name"),
    )
    op.create_table(
        "review",
        sa.Column("id", BigId, nullable=False),
        sa.Column("inspection_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("verdict", sa.String(6), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("supersedes_id", sa.BigInteger(), nullable=True),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("inspected_at", sa.DateTime(), nullable=False),
        sa.Column("model_verdict", sa.String(6), nullable=False),
        sa.CheckConstraint("verdict IN ('PASS', 'FAIL')", name="ck_review_verdict"),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"], ondelete="CASCADE",
                                name="fk_review_inspection_id_inspection"),
        sa.ForeignKeyConstraint(["user_id"], ["review_user.id"],
                                name="fk_review_user_id_review_user"),
        sa.ForeignKeyConstraint(["supersedes_id"], ["review.id"],
                                name="fk_review_supersedes_id_review"),
        sa.PrimaryKeyConstraint("id", name="pk_review"),
    )
    op.create_index("ix_review_inspection", "review", ["inspection_id", "id"])
    op.create_index("ix_review_time", "review", ["inspected_at", "station_id"])
    op.create_index("ix_review_decided", "review", ["decided_at"])
    op.create_table(
        "review_region",
        sa.Column("id", BigId, nullable=False),
        sa.Column("review_id", sa.BigInteger(), nullable=False),
        sa.Column("region_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(12), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=True),
        sa.Column("class_name", sa.String(64), nullable=True),
        sa.CheckConstraint("label IN ('defect', 'not_defect', 'unsure')",
                           name="ck_review_region_label"),
        sa.ForeignKeyConstraint(["review_id"], ["review.id"], ondelete="CASCADE",
                                name="fk_review_region_review_id_review"),
        sa.ForeignKeyConstraint(["region_id"], ["region.id"], ondelete="CASCADE",
                                name="fk_review_region_region_id_region"),
        sa.PrimaryKeyConstraint("id", name="pk_review_region"),
        sa.UniqueConstraint("review_id", "region_id",
                            name="uq_review_region_review_id_region_id"),
    )
    op.create_index("ix_review_region_region", "review_region", ["region_id"])


def downgrade() -> None:
    op.drop_table("review_region")
    op.drop_table("review")
    op.drop_table("review_user")
