"""Alembic migrations of the inspection records (a package so that wheels ship them)."""

__all__: list[str] = []
