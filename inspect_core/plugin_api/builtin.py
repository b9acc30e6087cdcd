"""The core's own contributions, registered through the same hooks as any plugin. Loaded at
every start (``inspect --help`` too), so the rules (pydantic, NumPy) load when registered."""

from __future__ import annotations

from inspect_core.plugin_api.hookspecs import RegisterRule, hookimpl


@hookimpl
def register_rules(register: RegisterRule) -> None:
    # lazy: the rule engine loads pydantic and NumPy; `inspect --help` imports this module
    from inspect_core.rules.engine import BUILTIN_RULES

    for name, factory in BUILTIN_RULES.items():
        register(name, factory)
