"""An inspection's input health (issue 25): the quality figures of the frame the model saw
(``focus``, ``mean_level``, ``highlights``, ``clipped_dark``, ``clipped_bright``,
``contrast``), its ``familiarity`` (higher: more like the training images), and
``health_flag``: ``ok``, ``quality`` (a quality limit broken) or ``unfamiliar``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Nothing existing changes meaning: every column is NULL for the records made so far (and for an
image not measured: an ERROR, a verdict known from before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FIGURES = (
    "focus",
    "mean_level",
    "highlights",
    "clipped_dark",
    "clipped_bright",
    "contrast",
    "familiarity",
)


def upgrade() -> None:
    # nullable columns: a plain ALTER TABLE ADD COLUMN each, no table rebuild
    for c in FIGURES:
        op.add_column("inspection", sa.Column(c, sa.Float(), nullable=True))
    op.add_column("inspection", sa.Column("health_flag", sa.String(12), nullable=True))


def downgrade() -> None:
    # in place (SQLite 3.35+): no rebuild of `inspection`, regions untouched
    op.drop_column("inspection", "health_flag")
    for c in reversed(FIGURES):
        op.drop_column("inspection", c)
