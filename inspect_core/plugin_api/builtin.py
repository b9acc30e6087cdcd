"""The core's own contributions, registered through the same hooks as any plugin."""

from __future__ import annotations

from inspect_core.plugin_api.hookspecs import RegisterRule, hookimpl
from inspect_core.rules.engine import BUILTIN_RULES


@hookimpl
def register_rules(register: RegisterRule) -> None:
    for name, factory in BUILTIN_RULES.items():
        register(name, factory)
