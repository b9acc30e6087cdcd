"""Station daemon on the line: folder and camera sources, MQTT, local journal, archive.

A station runs one recipe of one plugin on the images a source delivers, records every
inspection through the configured sinks (the ``sql`` sink of the records plugin first), keeps
results in a local fsync'd journal while the database is unreachable, and files every image
into ``archive/<verdict>/<date>/`` (bad input into ``quarantine/``).

The pieces can be used from Python as well as from ``inspect station run``::

    from inspect_stations.config.station import load_config
    from inspect_stations.pipeline.daemon import Station

    station = Station(load_config("line1.toml"))       # names resolved through the registry
    station.run()                                      # until SIGTERM / SIGINT / stop()
"""

__all__: list[str] = []  # the API is in the modules named above, imported where used
