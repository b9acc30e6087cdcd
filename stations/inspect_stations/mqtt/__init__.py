"""MQTT as a PLC uses it: triggers in, results out, the mqtt sink, topic checks."""

__all__: list[str] = []
