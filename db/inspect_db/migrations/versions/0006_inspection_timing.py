"""An inspection's latency split in two: ``inspect_ms`` (the time spent on the image: reading,
decoding, the model, the rules) and ``queue_ms`` (the time it waited for the station's
threads, behind other images), each with a covering index for the report's percentiles.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Nothing existing changes meaning: both columns are NULL for the records made so far, whose
``latency_ms`` mixes the two (the report counts them in the latency only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("inspect_ms", "queue_ms")
COVER_TAIL = ["inspected_at", "station_id", "verdict", "plugin", "recipe"]


def upgrade() -> None:
    for c in COLUMNS:  # a nullable column: a plain ALTER TABLE ADD COLUMN, no table rebuild
        op.add_column("inspection", sa.Column(c, sa.Float(), nullable=True))
    for c in COLUMNS:
        op.create_index(f"ix_inspection_{c}_cover", "inspection", [c, *COVER_TAIL])


def downgrade() -> None:
    for c in COLUMNS:
        op.drop_index(f"ix_inspection_{c}_cover", table_name="inspection")
    for c in COLUMNS:  # in place (SQLite 3.35+): no rebuild of `inspection`, regions untouched
        op.drop_column("inspection", c)
