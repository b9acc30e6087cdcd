"""Quality limits (inspect_core.health.limits): check() names each broken limit with the
reason an operator acts on; the limits table refuses what a file could get wrong."""

from __future__ import annotations

import pytest

from inspect_core.config import validate
from inspect_core.config.reference import Section, render_section
from inspect_core.health import QualityFigures, QualityLimits, QualityProblem, check
from inspect_core.health.limits import LIMITS

GOOD = QualityFigures(
    focus=0.8, clipped_dark=0.001, clipped_bright=0.002, mean=120, highlights=210, contrast=40
)
LIMITS_SET = QualityLimits(
    focus_min=0.3,
    clipped_dark_max=0.01,
    clipped_bright_max=0.02,
    mean_min=60,
    mean_max=180,
    highlights_min=150,
    contrast_min=15,
)


def test_an_image_within_every_limit_has_no_problem():
    assert check(GOOD, LIMITS_SET) == []


def test_an_image_out_of_focus_is_named_with_its_value_and_the_limit():
    blurred = QualityFigures(**{**vars(GOOD), "focus": 0.081})
    assert check(blurred, LIMITS_SET) == [
        QualityProblem("focus", 0.081, "min", 0.3, "out of focus")
    ]
    (p,) = check(blurred, LIMITS_SET)
    assert p.message == "out of focus: focus 0.081 is below the least 0.3 allowed"


@pytest.mark.parametrize(
    "figure,value,reason",
    [
        ("focus", 0.1, "out of focus"),
        ("mean", 30.0, "under-exposed"),
        ("highlights", 70.0, "under-exposed"),
        ("clipped_dark", 0.2, "under-exposed"),
        ("mean", 230.0, "over-exposed"),
        ("clipped_bright", 0.4, "over-exposed"),
        ("contrast", 4.0, "low contrast"),
    ],
)
def test_each_figure_out_of_its_limit_gives_its_reason(figure, value, reason):
    problems = check(QualityFigures(**{**vars(GOOD), figure: value}), LIMITS_SET)
    assert [(p.figure, p.value, p.reason) for p in problems] == [(figure, value, reason)]
    assert problems[0].message.startswith(f"{reason}: {figure.replace('_', ' ')} ")


def test_every_limit_has_its_field_and_every_field_its_limit():
    assert {spec.key for spec in LIMITS} == set(QualityLimits.model_fields)


def test_a_dark_image_lists_every_problem_exposure_first():
    dark = QualityFigures(
        focus=0.1, clipped_dark=0.3, clipped_bright=0, mean=20, highlights=60, contrast=5
    )
    reasons = [p.reason for p in check(dark, LIMITS_SET)]
    assert reasons == ["under-exposed"] * 3 + ["out of focus", "low contrast"]


def test_an_image_on_a_limit_passes():
    on = QualityFigures(
        focus=0.3, clipped_dark=0.01, clipped_bright=0.02, mean=60, highlights=150, contrast=15
    )
    assert check(on, LIMITS_SET) == []
    assert check(QualityFigures(**{**vars(on), "mean": 180}), LIMITS_SET) == []


def test_unset_limits_are_not_checked():
    awful = QualityFigures(
        focus=0.0, clipped_dark=1.0, clipped_bright=0.0, mean=0, highlights=0, contrast=0
    )
    assert check(awful, QualityLimits()) == []
    only_focus = check(awful, QualityLimits(focus_min=0.2))
    assert [p.figure for p in only_focus] == ["focus"]


def test_the_limits_table_refuses_a_typo_a_wrong_range_and_crossed_limits():
    _, problems = validate(QualityLimits, {"focus_mn": 0.2})
    assert any("focus_mn" in key and "focus_min" in text for key, text in problems)
    _, problems = validate(QualityLimits, {"clipped_dark_max": 1.5})
    assert any("must be a number in 0..1, got 1.5" in text for _, text in problems)
    _, problems = validate(QualityLimits, {"focus_min": "0.2"})
    assert problems  # a string is no number, as in every table
    _, problems = validate(QualityLimits, {"mean_min": 200, "mean_max": 100})
    assert any("mean_min (200) is above mean_max (100)" in text for _, text in problems)
    limits, problems = validate(QualityLimits, {"mean_min": 40, "focus_min": 1})
    assert problems == [] and limits is not None and limits.focus_min == 1.0


def test_the_limits_table_documents_itself_for_the_configuration_reference():
    """Ready for a station file's section: every key with its range and meaning."""
    text = "\n".join(render_section(Section("[quality]", QualityLimits, "Station file")))
    for key in QualityLimits.model_fields:
        assert f"| `{key}` | number | not set |" in text
    assert "a number in 0..1 |" in text and "a number in 0..255 gray levels |" in text
