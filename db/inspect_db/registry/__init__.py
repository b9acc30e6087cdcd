"""The model registry: versions of a recipe's model in the database and which one is active
(:mod:`inspect_db.registry.versions`), and ``inspect model ...`` (:mod:`.cli`)."""

__all__: list[str] = []  # the modules are the API: import from them
