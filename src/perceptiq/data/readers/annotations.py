"""Distortion-region annotations of EvalMuse-Structure turned into heatmaps (EvalMuse-Structure
data_process.py).

``bbox_info`` is a list over annotators (3 in the release); each annotator gives a list of regions and
an empty list means "no distortion seen". A region is ``{"bbox_type": 1 | 2, "bbox": points}``:

* type 1, a rectangle given by its top-left and bottom-right points ``[{"x", "y"}, {"x", "y"}]``, filled
  end-exclusively on ``[y1:y2, x1:x2]`` (as the organisers' ``data_process.py`` slices it);
* type 2, a polygon given by its vertices (``{"x", "y"}`` objects or ``[x, y]`` pairs), filled as
  OpenCV's ``cv2.fillPoly`` fills it: interior plus boundary pixels (needs ``opencv-python-headless``).

One annotator's regions are OR-ed (an overlap counts once), the annotators' masks are summed into a
count 0..3, and counts map to the uint8 heatmap levels 1 -> 64, 2 -> 127, 3 -> 180 (4 -> 255) of the
reference code. Conventions of ours: coordinates are rounded to the nearest integer and clipped to the
image (the reference code indexes with the raw numbers, where a negative coordinate would wrap around);
counts above 4 map to 255.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from perceptiq.errors import InputError

__all__ = ["HEATMAP_LEVELS", "annotation_counts", "rasterise_annotations"]

HEATMAP_LEVELS: tuple[int, ...] = (0, 64, 127, 180, 255)
"""Heatmap value for 0, 1, 2, 3 and 4 annotators marking a pixel (EvalMuse-Structure ``data_process.py``)."""

Region = Mapping[str, object]


def _points(raw: object, where: str) -> np.ndarray:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) == 0:
        raise InputError(f"{where}: 'bbox' must be a non-empty list of points")
    out = []
    for point in raw:
        if isinstance(point, Mapping) and "x" in point and "y" in point:
            xy = (point["x"], point["y"])
        elif isinstance(point, Sequence) and not isinstance(point, str) and len(point) == 2:
            xy = (point[0], point[1])
        else:
            raise InputError(f"{where}: a point must be {{'x': .., 'y': ..}} or [x, y], got {point!r}")
        try:
            out.append([round(float(xy[0])), round(float(xy[1]))])
        except (TypeError, ValueError) as err:
            raise InputError(f"{where}: non-numeric point {point!r}") from err
    return np.asarray(out, dtype=np.int64)


def _fill_polygon(mask: np.ndarray, vertices: np.ndarray) -> None:
    try:
        import cv2
    except ImportError as err:
        raise InputError(
            "polygon annotations (bbox_type 2) are filled with OpenCV: pip install opencv-python-headless"
        ) from err
    canvas = np.zeros(mask.shape, dtype=np.uint8)
    cv2.fillPoly(canvas, [vertices.astype(np.int32).reshape(-1, 1, 2)], 1)
    mask |= canvas.astype(bool)


def _annotator_mask(regions: Sequence[Region], height: int, width: int, who: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    for k, region in enumerate(regions):
        where = f"annotator {who}, region {k}"
        if not isinstance(region, Mapping):
            raise InputError(f"{where}: expected an object with 'bbox_type' and 'bbox', got {region!r}")
        kind = region.get("bbox_type")
        points = _points(region.get("bbox"), where)
        if kind == 1:
            if len(points) != 2:
                raise InputError(
                    f"{where}: a rectangle needs 2 points (top-left, bottom-right), got {len(points)}"
                )
            (x1, y1), (x2, y2) = np.clip(points, 0, [width, height])
            mask[y1:y2, x1:x2] = True
        elif kind == 2:
            _fill_polygon(mask, points)
        else:
            raise InputError(f"{where}: unknown bbox_type {kind!r} (1 = rectangle, 2 = polygon)")
    return mask


def annotation_counts(bbox_info: Sequence[Sequence[Region]], height: int, width: int) -> np.ndarray:
    """Per-pixel number of annotators who marked the pixel, shape (height, width), int64."""
    if height < 1 or width < 1:
        raise InputError(f"image size must be positive, got {height}x{width}")
    if not isinstance(bbox_info, Sequence) or isinstance(bbox_info, str):
        raise InputError("bbox_info must be a list over annotators, each a list of regions")
    counts = np.zeros((height, width), dtype=np.int64)
    for who, regions in enumerate(bbox_info):
        if not regions:
            continue
        if not isinstance(regions, Sequence) or isinstance(regions, str):
            raise InputError(f"annotator {who}: expected a list of regions, got {regions!r}")
        counts += _annotator_mask(regions, height, width, who)
    return counts


def rasterise_annotations(bbox_info: Sequence[Sequence[Region]], height: int, width: int) -> np.ndarray:
    """EvalMuse-Structure ground-truth heatmap, uint8 (height, width), levels :data:`HEATMAP_LEVELS`.

    ``heatmap / 255`` is the training target of the RAHF-style baseline (after a resize to 512x512);
    "marked by at least one annotator" is ``heatmap >= 64``.
    """
    counts = annotation_counts(bbox_info, height, width)
    levels = np.asarray(HEATMAP_LEVELS, dtype=np.uint8)
    return levels[np.minimum(counts, len(HEATMAP_LEVELS) - 1)]
