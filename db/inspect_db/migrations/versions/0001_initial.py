"""Initial schema: station, model, inspection, region, with the report's indexes.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    _create_station_and_model()
    _create_inspection()
    _create_region()


def _create_station_and_model() -> None:
    op.create_table(
        "station",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("plugin", sa.String(128), nullable=False),
        sa.Column("recipe", sa.String(128), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_station"),
        sa.UniqueConstraint("name", name="uq_station_name"),
    )
    op.create_table(
        "model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("plugin", sa.String(128), nullable=False),
        sa.Column("recipe", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("card", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model"),
        sa.UniqueConstraint("sha256", name="uq_model_sha256"),
    )


def _create_inspection() -> None:
    op.create_table(
        "inspection",
        sa.Column("id", BigId, nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("plugin", sa.String(128), nullable=False),
        sa.Column("recipe", sa.String(128), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("captured_at", sa.DateTime(), nullable=True),
        sa.Column("inspected_at", sa.DateTime(), nullable=False),
        sa.Column("inspected_hour", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("verdict", sa.String(6), nullable=False),
        sa.Column("fired", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("part_id", sa.String(128), nullable=True),
        sa.Column("lot", sa.String(128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("overlay_path", sa.Text(), nullable=True),
        sa.Column("n_regions", sa.Integer(), nullable=False),
        sa.Column("defect_area_px", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("verdict IN ('PASS', 'REVIEW', 'FAIL', 'ERROR')",
                           name="ck_inspection_verdict"),
        sa.ForeignKeyConstraint(["station_id"], ["station.id"],
                                name="fk_inspection_station_id_station"),
        sa.ForeignKeyConstraint(["model_id"], ["model.id"], name="fk_inspection_model_id_model"),
        sa.PrimaryKeyConstraint("id", name="pk_inspection"),
        sa.UniqueConstraint("station_id", "image_sha256",
                            name="uq_inspection_station_id_image_sha256"),
    )
    op.create_index("ix_inspection_time", "inspection", ["inspected_at"])
    op.create_index("ix_inspection_hour_cover", "inspection",
                    ["inspected_hour", "station_id", "verdict", "inspected_at", "latency_ms",
                     "plugin", "recipe"])
    op.create_index("ix_inspection_latency_cover", "inspection",
                    ["latency_ms", "inspected_at", "station_id", "verdict", "plugin", "recipe"])
    op.create_index("ix_inspection_station_time", "inspection", ["station_id", "inspected_at"])
    op.create_index("ix_inspection_defect_area", "inspection", ["defect_area_px"])
    op.create_index("ix_inspection_verdict_time", "inspection", ["verdict", "inspected_at"])
    op.create_index("ix_inspection_plugin_recipe_time", "inspection",
                    ["plugin", "recipe", "inspected_at"])
    op.create_index("ix_inspection_part_id", "inspection", ["part_id"])
    op.create_index("ix_inspection_lot", "inspection", ["lot"])


def _create_region() -> None:
    op.create_table(
        "region",
        sa.Column("id", BigId, nullable=False),
        sa.Column("inspection_id", sa.BigInteger(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("inspected_at", sa.DateTime(), nullable=False),
        sa.Column("verdict", sa.String(6), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("class_name", sa.String(64), nullable=False),
        sa.Column("bbox_x", sa.Integer(), nullable=False),
        sa.Column("bbox_y", sa.Integer(), nullable=False),
        sa.Column("bbox_w", sa.Integer(), nullable=False),
        sa.Column("bbox_h", sa.Integer(), nullable=False),
        sa.Column("area_px", sa.Integer(), nullable=False),
        sa.Column("area_mm2", sa.Float(), nullable=True),
        sa.Column("centroid_x", sa.Float(), nullable=False),
        sa.Column("centroid_y", sa.Float(), nullable=False),
        sa.Column("max_prob", sa.Float(), nullable=False),
        sa.Column("mean_prob", sa.Float(), nullable=False),
        sa.Column("polygon", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"], ondelete="CASCADE",
                                name="fk_region_inspection_id_inspection"),
        sa.PrimaryKeyConstraint("id", name="pk_region"),
    )
    op.create_index("ix_region_inspection", "region",
                    ["inspection_id", "class_name", "area_px"])
    op.create_index("ix_region_pareto", "region",
                    ["class_name", "inspected_at", "station_id", "verdict", "area_px"])


def downgrade() -> None:
    op.drop_table("region")
    op.drop_table("inspection")
    op.drop_table("model")
    op.drop_table("station")
