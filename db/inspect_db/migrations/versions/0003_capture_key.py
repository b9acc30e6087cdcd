"""Triggered captures get a record each: ``inspection.capture_id`` and the keys that use it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-12

Until 0002 an inspection was unique per (station, image sha256), so two MQTT-triggered parts
whose frames were byte-identical collapsed into one record. Now:

* ``capture_id`` (nullable): the key of a triggered capture; NULL for files (all existing rows);
* ``uq_inspection_content``: unique (station, image sha256) among rows *without* a capture id
  (a partial unique index; a file's content is still recorded once);
* ``uq_inspection_station_id_capture_id``: unique (station, capture id).

SQLite cannot drop a constraint in place: the table is rebuilt (Alembic batch mode). When
foreign keys are enforced on the migrating connection, dropping the old table would
cascade-delete every region, so the regions are kept aside and put back.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_KEY = "uq_inspection_station_id_image_sha256"
CAPTURE_KEY = "uq_inspection_station_id_capture_id"
CONTENT_KEY = "uq_inspection_content"
CONTENT_WHERE = sa.text("capture_id IS NULL")


def _fk_enforced(bind) -> bool:
    return bind.dialect.name == "sqlite" and bool(bind.exec_driver_sql(
        "PRAGMA foreign_keys").scalar())


def _rebuild_inspection(change) -> None:
    """Run ``change(batch)`` on ``inspection`` (SQLite: a table rebuild) without losing regions."""
    bind = op.get_bind()
    keep = _fk_enforced(bind)
    if keep:
        op.execute("CREATE TEMP TABLE _keep_region AS SELECT * FROM region")
    with op.batch_alter_table("inspection") as batch:
        change(batch)
    if keep:
        op.execute("DELETE FROM region")  # what the cascade left (nothing, or all of it)
        op.execute("INSERT INTO region SELECT * FROM _keep_region")
        op.execute("DROP TABLE _keep_region")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        def change(batch) -> None:
            batch.add_column(sa.Column("capture_id", sa.String(128), nullable=True))
            batch.drop_constraint(OLD_KEY, type_="unique")
            batch.create_unique_constraint(CAPTURE_KEY, ["station_id", "capture_id"])

        _rebuild_inspection(change)
    else:
        op.add_column("inspection", sa.Column("capture_id", sa.String(128), nullable=True))
        op.drop_constraint(OLD_KEY, "inspection", type_="unique")
        op.create_unique_constraint(CAPTURE_KEY, "inspection", ["station_id", "capture_id"])
    op.create_index(CONTENT_KEY, "inspection", ["station_id", "image_sha256"], unique=True,
                    sqlite_where=CONTENT_WHERE, postgresql_where=CONTENT_WHERE)


def downgrade() -> None:
    """Back to one record per (station, image sha256): fails (and changes nothing) while two
    captures of one station share an image; delete or merge those rows first."""
    op.drop_index(CONTENT_KEY, table_name="inspection")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        def change(batch) -> None:
            batch.drop_constraint(CAPTURE_KEY, type_="unique")
            batch.drop_column("capture_id")
            batch.create_unique_constraint(OLD_KEY, ["station_id", "image_sha256"])

        _rebuild_inspection(change)
    else:
        op.drop_constraint(CAPTURE_KEY, "inspection", type_="unique")
        op.drop_column("inspection", "capture_id")
        op.create_unique_constraint(OLD_KEY, "inspection", ["station_id", "image_sha256"])
