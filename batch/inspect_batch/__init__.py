"""Batch re-inspection on Dask: ``inspect backtest`` re-judges the images a line recorded with
a candidate model and compares its verdicts with the recorded ones (and the operators').

Modules, in the order data flows:

- :mod:`.history`: the recorded inspections of a window, streamed from the database, and the
  recipe settings each was judged under;
- :mod:`.cluster`: a Dask client, on a LocalCluster or a scheduler's address;
- :mod:`.worker`: what runs on a worker: the candidate loaded once (a worker plugin), chunks
  of images judged;
- :mod:`.stream`: chunks submitted with a bounded number in flight, results as they finish;
- :mod:`.compare`: the tally (confusion, changed images, agreement, latency), giving
  :mod:`.result`'s typed :class:`~inspect_batch.result.BacktestResult`;
- :mod:`.why`: why a verdict changed (the classes whose regions differ, the rules that fired);
- :mod:`.page` and :mod:`.page_sections`: the HTML page of the images whose verdict changes,
  the latency and the operators' agreement;
- :mod:`.commands`: ``inspect backtest``.

The names below are exported lazily (module ``__getattr__``): the registry imports
``inspect_batch.plugin`` at every start, and ``inspect --help`` should not load the recipe
module (NumPy, pydantic) that :mod:`.items` needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as mypy sees them; at run time __getattr__ imports each
    from inspect_batch.compare import Tally
    from inspect_batch.items import BacktestItem, ItemResult, RecipeSettings

__all__ = ["BacktestItem", "ItemResult", "RecipeSettings", "Tally"]

#: the module that defines each exported name
_LAZY = {
    "BacktestItem": "inspect_batch.items",
    "ItemResult": "inspect_batch.items",
    "RecipeSettings": "inspect_batch.items",
    "Tally": "inspect_batch.compare",
}


def __getattr__(name: str) -> Any:
    """An exported name, imported from its module on first use."""
    if name not in _LAZY:  # e.g. a submodule not imported yet: `from . import x` imports it
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
