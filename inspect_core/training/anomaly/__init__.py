"""The training side of good-only (anomaly) models, which imports torch (as all of
:mod:`inspect_core.training` does): the feature extractors (``features``), patch features and
the greedy coreset (``memory``), :class:`~.network.AnomalyNet`, its ONNX export (``export``) and
the run (``fit``: ``inspect train --kind anomaly``). What the runtime, evaluation and the command
line read without torch is in :mod:`inspect_core.anomaly`."""

__all__: list[str] = []
