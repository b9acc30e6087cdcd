"""Reports over the inspection records: the filters (:mod:`.filters`), the queries that make a
typed :class:`~inspect_db.reports.model.Report` (:mod:`.query`, :mod:`.review_figures`), the
rows of the CSV export (:mod:`.export`), the tables every renderer shows (:mod:`.layout`), the
renderers (:mod:`.terminal`, :mod:`.csv_out`, :mod:`.html` with its templates) and the report
formats plugins add (:mod:`.formats`, hook ``register_report_formats``)."""

__all__: list[str] = []  # the modules are the API: import from them
