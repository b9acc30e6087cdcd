"""``[drift]``: when a station says its input drifts (too many images its model finds
unfamiliar, or of poor quality, among the last ones)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from inspect_core.config import Settings

#: the health flags that count towards drift (``ok`` never does)
DriftFlag = Literal["unfamiliar", "quality"]


def _both() -> list[DriftFlag]:
    return ["unfamiliar", "quality"]


class DriftOptions(Settings):
    """``[drift]``: the share of flagged images over the last ``window`` measured images above
    which the station raises one ``input_drift`` alert (log, status, MQTT event), and one
    ``input_drift_recovered`` once the share is back below 0.8 x ``limit``."""

    window: int = Field(
        default=200, gt=0, le=1_000_000, description="the last N measured images judged"
    )
    limit: float = Field(
        default=0.1, gt=0, le=1, allow_inf_nan=False, description="share of flagged images"
    )
    flags: list[DriftFlag] = Field(
        default_factory=_both,
        min_length=1,
        description="health flags that count",
    )
    min_images: int | None = Field(
        default=None, gt=0, description="images seen before judging (default: window)"
    )

    @model_validator(mode="after")
    def _min_within_window(self) -> DriftOptions:
        if self.min_images is not None and self.min_images > self.window:
            raise ValueError(
                f"min_images ({self.min_images}) is more than window ({self.window}): the "
                "share would never be judged; make min_images at most window"
            )
        return self

    @property
    def least(self) -> int:
        """The images to see before the share is judged."""
        return self.window if self.min_images is None else self.min_images
