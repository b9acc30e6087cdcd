"""The core's own contributions, registered through the same hooks as any plugin."""
from __future__ import annotations

from .hookspecs import RegisterRule, hookimpl
from .rules import BUILTIN_RULES


@hookimpl
def register_rules(register: RegisterRule) -> None:
    for name, factory in BUILTIN_RULES.items():
        register(name, factory)
