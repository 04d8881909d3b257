"""Named test-time input policies of the seed challenge methods (:class:`InputPolicy` presets).

* ``"ydy_30x128"``: team ydy of the VQualA 2025 ISRGC-Q challenge (Li et al., ISRG-Q report, 2025, sec. 4.2,
  "Testing
  Details"): 30 patches of 128 x 128 per image, score = mean of the patch scores. The report does not
  say how the patches are placed; they are drawn here at seeded uniform random positions.
* ``"fiqa_20x224"``: the MobileNetV2 baseline of the VQualA 2025 face IQA challenge (Ma et al., VQualA 2025
  FIQA report;
  MobileNetV2 baseline count): mean over 20 random 224 x 224 crops.
* ``"micv_tiles_448"``: 448 x 448 tiles covering the image (border tiles shifted inside), mean score;
  a whole-image alternative to MICV's single centre crop (Li et al., ISRG-Q report, 2025, sec. 4.1), which
  :class:`~perceptiq.models.hybrid_vit_cnn.HybridViTCNN` applies itself (``center_crop=True``).

Random positions come from a ``torch.Generator`` seeded with ``seed`` (0), so a preset gives the same
crops for the same image size on every call. Use ``dataclasses.replace(POLICIES[name], seed=...)``
for other draws.
"""

from __future__ import annotations

from perceptiq.errors import InputError
from perceptiq.functional.patches import InputPolicy

__all__ = ["POLICIES", "get_policy"]

POLICIES: dict[str, InputPolicy] = {
    "ydy_30x128": InputPolicy(mode="random_patches", tile_size=128, num_patches=30, seed=0),
    "fiqa_20x224": InputPolicy(mode="random_patches", tile_size=224, num_patches=20, seed=0),
    "micv_tiles_448": InputPolicy(mode="tiles", tile_size=448, border="shift"),
}


def get_policy(name: str) -> InputPolicy:
    """The preset ``name`` of :data:`POLICIES`."""
    if name not in POLICIES:
        raise InputError(f"unknown input policy preset {name!r}; presets: {', '.join(sorted(POLICIES))}")
    return POLICIES[name]
