"""Review storage: the queue and items the review page reads (:mod:`.queue`), the decisions and
users it writes (:mod:`.store`), the typed records between them and the page (:mod:`.types`),
and the reviewed images the export reads (:mod:`.export`). The tables are the records
database's (:mod:`inspect_db.models`)."""

__all__: list[str] = []  # the modules are the API: import from them
