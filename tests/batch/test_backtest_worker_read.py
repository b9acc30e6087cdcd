"""The backtest reads an archived 16-bit image as the station's limits said."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspect_batch.worker import read_image


def test_a_12_bit_archive_is_read_with_the_stations_setting(tmp_path):
    raw = np.tile(np.linspace(0, 4095, 32).astype(np.uint16), (8, 1))
    path = tmp_path / "raw.png"
    cv2.imwrite(str(path), raw)
    as16 = read_image(str(path))  # "scale": value / 257, nearly black
    as12 = read_image(str(path), sixteen_bit="12")
    assert as16.max() <= 16 and as12.max() == 255 and as12.min() == 0
    with pytest.raises(Exception, match="above 1023"):
        read_image(str(path), sixteen_bit="10")
