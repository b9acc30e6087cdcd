"""Recording inspections: the recorder (the ``sql`` sink), the rows it writes, how values are
cleaned for the database, and the operators' decisions other features read."""

__all__: list[str] = []  # the modules are the API: import from them
