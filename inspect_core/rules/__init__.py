"""Rules: regions in, a PASS / REVIEW / FAIL verdict out.

:func:`build_rules` turns a recipe's ``[[rules]]`` into rule objects (the built-in types and
those plugins register); :func:`judge` applies them to a :class:`RuleContext` (regions, label
map, class names, pixel size). Region-of-interest rules are in :mod:`.roi`.
"""

from .engine import RuleConfigError, RuleContext, build_rules, judge
from .roi import roi_mask, roi_points

__all__ = ["RuleConfigError", "RuleContext", "build_rules", "judge", "roi_mask", "roi_points"]
