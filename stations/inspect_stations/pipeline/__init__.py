"""The pipeline and its journal: reader -> model workers -> journal -> sinks, filing, status,
locks, model following."""

__all__: list[str] = []
