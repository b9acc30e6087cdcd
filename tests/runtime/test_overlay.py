"""Overlays show what the operator needs: region classes, boxes, the zone, the verdict."""

import numpy as np

from inspect_core.runtime.inspector import Inspector
from inspect_core.runtime.overlay import VERDICT_BGR, render_result
from inspect_core.runtime.recipe import Recipe


def test_overlay_outlines_the_region_of_interest_and_shows_the_verdict(tiny_model):
    recipe = Recipe(
        "zone",
        tiny_model,
        region_classes=["scratch"],
        rules=[
            {
                "type": "roi",
                "classes": ["scratch"],
                "polygon": [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]],
            }
        ],
    )
    insp = Inspector(recipe, threads=1)
    img = np.full((81, 121), 40, np.uint8)
    result = insp.inspect_image(img)
    ov = render_result(result, result.verdict, insp)
    assert ov.shape == (81, 121, 3)
    # the zone's left edge at x = 0.25 * 120 = 30, between y = 20 and 60 (below the banner)
    edge = ov[35:55, 30]
    assert (edge >= 200).all(), "the region of interest is not outlined"
    # the verdict banner across the top carries the verdict's colour
    assert tuple(int(v) for v in ov[1, 100]) == VERDICT_BGR[result.verdict.decision]
    # classes that are neither region nor coverage classes are not painted
    dent = insp.classes.index("dent")
    untouched = result.labels == dent
    untouched[:20] = False  # banner
    untouched[25:60, 28:93] = False  # the outline
    if untouched.any():
        assert (ov[untouched] == 40).all()
