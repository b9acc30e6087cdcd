"""Print the tables of shipped models from their cards (plugins/*/models/*.json), as the docs
site shows them (docs/gen/docgen_models.py makes both): the segmentation models, their first
score the card's headline (the mIoU on whole groups no training image came from), and the
good-only models with the scores such a card has.

    python training/cards_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(ROOT / "docs" / "gen"))  # the site's generator, not a package
    from docgen_models import model_tables  # lazy: found on the path set just above

    print(model_tables(ROOT))


if __name__ == "__main__":
    main()
