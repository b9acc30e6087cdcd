"""Sources: the watched folder and the camera."""

__all__: list[str] = []
