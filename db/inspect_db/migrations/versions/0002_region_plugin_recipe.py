"""Copy plugin and recipe onto every region, so the defect Pareto filtered by plugin or recipe
reads one covering index instead of joining 3 M regions to their inspections and sorting.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-26

Existing regions get their inspection's plugin and recipe (one UPDATE; on a database with
millions of regions this takes a while, once). ``ix_region_pareto`` gains the two columns.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_PARETO = ["class_name", "inspected_at", "station_id", "verdict", "area_px"]
NEW_PARETO = ["class_name", "inspected_at", "station_id", "verdict", "plugin", "recipe",
              "area_px"]


def upgrade() -> None:
    op.drop_index("ix_region_pareto", table_name="region")  # not maintained during the UPDATE
    op.add_column("region", sa.Column("plugin", sa.String(128), nullable=False,
                                      server_default=""))
    op.add_column("region", sa.Column("recipe", sa.String(128), nullable=False,
                                      server_default=""))
    # row-value SET: SQLite >= 3.15 and PostgreSQL
    op.execute("UPDATE region SET (plugin, recipe) = (SELECT inspection.plugin, inspection.recipe "
               "FROM inspection WHERE inspection.id = region.inspection_id)")
    op.create_index("ix_region_pareto", "region", NEW_PARETO)


def downgrade() -> None:
    op.drop_index("ix_region_pareto", table_name="region")
    with op.batch_alter_table("region") as batch:
        batch.drop_column("recipe")
        batch.drop_column("plugin")
    op.create_index("ix_region_pareto", "region", OLD_PARETO)
