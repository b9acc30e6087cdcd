"""Operator review: ``review_mark``, the regions an operator draws in a decision.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

One new table; nothing existing changes. A mark belongs to one decision (``review``), which
says who drew it and when, and is never edited: a later decision draws its own marks. Its
geometry is JSON text of numbers (``[[x, y], ...]`` in the recorded image's pixels) with, for
a brush stroke, its width; ``replaces_region_id`` names the region whose outline it corrects
in that decision. Deleting an inspection (retention) deletes its decisions and their marks.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "review_mark",
        sa.Column("id", BigId, nullable=False),
        sa.Column("review_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("points", sa.Text(), nullable=False),
        sa.Column("width", sa.Float(), nullable=True),
        sa.Column("label", sa.String(12), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=True),
        sa.Column("class_name", sa.String(64), nullable=True),
        sa.Column("replaces_region_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("kind IN ('polygon', 'stroke')", name="ck_review_mark_kind"),
        sa.CheckConstraint(
            "label IN ('defect', 'not_defect', 'unsure')", name="ck_review_mark_label"
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["review.id"],
            ondelete="CASCADE",
            name="fk_review_mark_review_id_review",
        ),
        sa.ForeignKeyConstraint(
            ["replaces_region_id"],
            ["region.id"],
            ondelete="CASCADE",
            name="fk_review_mark_replaces_region_id_region",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_review_mark"),
        sa.UniqueConstraint("review_id", "number", name="uq_review_mark_review_id_number"),
    )
    op.create_index("ix_review_mark_region", "review_mark", ["replaces_region_id"])


def downgrade() -> None:
    op.drop_index("ix_review_mark_region", table_name="review_mark")
    op.drop_table("review_mark")
