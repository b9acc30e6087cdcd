"""Input checks: what a file or frame must be before it reaches the model (regular file, size,
header, pixels, work)."""

__all__: list[str] = []
