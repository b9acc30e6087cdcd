"""The model registry: versions in ``model`` (path, origin, added_by, note) and the
append-only history of promotes and rollbacks in ``model_activation``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Nothing existing changes meaning: the new ``model`` columns are NULL for the models recorded
so far (a model an inspection named is not a registered version until ``inspect model add``).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("model") as t:
        t.add_column(sa.Column("path", sa.Text(), nullable=True))
        t.add_column(sa.Column("origin", sa.String(16), nullable=True))
        t.add_column(sa.Column("added_by", sa.String(128), nullable=True))
        t.add_column(sa.Column("note", sa.Text(), nullable=True))
    op.create_table(
        "model_activation",
        sa.Column("id", BigId, nullable=False),
        sa.Column("plugin", sa.String(128), nullable=False),
        sa.Column("recipe", sa.String(128), nullable=False),
        sa.Column("station", sa.String(128), nullable=True),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("inherit", sa.Boolean(), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"], ["model.id"], name="fk_model_activation_model_id_model"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_activation"),
    )
    op.create_index(
        "ix_model_activation_scope", "model_activation", ["plugin", "recipe", "station", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_model_activation_scope", table_name="model_activation")
    op.drop_table("model_activation")
    for name in ("note", "added_by", "origin", "path"):  # in place: no rebuild of `model`,
        op.drop_column("model", name)  # which inspections refer to (SQLite 3.35+)
