"""The names of the ``color`` option of every metric (no torch import, so the CLI's help stays fast).

Their conversions are in :mod:`perceptiq.functional._color`.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["ColorSpace", "GreyColorSpace", "COLOR_SPACES", "GREY_COLOR_SPACES"]

ColorSpace = Literal["rgb", "y", "gray"]
GreyColorSpace = Literal["y", "gray"]

COLOR_SPACES: dict[str, str] = {
    "rgb": "the three RGB channels",
    "y": "BT.601 luma of MATLAB rgb2ycbcr, the Y channel of super-resolution papers",
    "gray": "MATLAB rgb2gray, 0.2989 R + 0.5870 G + 0.1140 B",
}
"""The one vocabulary of the ``color`` option of metrics, with what each name means."""
GREY_COLOR_SPACES: tuple[str, ...] = ("gray", "y")
"""The ``color`` values of metrics computed on one grey channel."""
