"""Configuration: the station TOML file read into typed models, its checks, and its reference."""

__all__: list[str] = []
