"""The shipped domain plugins (industrial, aerial, robotics), each registered through the
``inspect.plugins`` entry point like a third party's."""

__all__: list[str] = []  # each subpackage is a plugin of its own
