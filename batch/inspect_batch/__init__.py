"""Batch re-inspection on Dask: ``inspect backtest`` re-judges the images a line recorded with
a candidate model and compares its verdicts with the recorded ones (and the operators').

Modules, in the order data flows:

- :mod:`.history`: the recorded inspections of a window, streamed from the database, and the
  recipe settings each was judged under;
- :mod:`.cluster`: a Dask client, on a LocalCluster or a scheduler's address;
- :mod:`.worker`: what runs on a worker: the candidate loaded once (a worker plugin), chunks
  of images judged;
- :mod:`.stream`: chunks submitted with a bounded number in flight, results as they finish;
- :mod:`.compare`: the tally (confusion, changed images, agreement, latency);
- :mod:`.page`: the HTML page of the images whose verdict changes;
- :mod:`.commands`: ``inspect backtest``.
"""

from inspect_batch.compare import Tally
from inspect_batch.items import BacktestItem, ItemResult, RecipeSettings

__all__ = ["BacktestItem", "ItemResult", "RecipeSettings", "Tally"]
