"""Tiny configurations of the model families (random weights, a few thousand parameters), shared by
the family tests and the registry contract tests so both build the same small architectures."""

TINY_CONVNEXT = {"dims": [8, 16, 24, 32], "depths": [1, 1, 1, 1]}  # JSON-native lists
HYBRID = {
    "backbone": "vit_tiny_patch16_224",
    "backbone_kwargs": {"depth": 1, "embed_dim": 32, "num_heads": 2},
    "heads": 2,
    "input_size": 32,
    "conv_channels": (16, 8),
    "hidden": 8,
    "dropout": 0.0,
}
STRUCTURE = {
    "backbone": "convnext_atto",
    "backbone_kwargs": TINY_CONVNEXT,
    "input_size": 64,
    "heatmap_size": None,
    "width": 16,
    "heads": 2,
    "score_hidden": 8,
    "dropout": 0.0,
    "prompt_dim": 12,
}
ULTRA = {
    "backbone": "convnext_atto",
    "backbone_kwargs": TINY_CONVNEXT,
    "fpn_channels": 8,
    "diff_channels": 8,
    "d_model": 16,
    "heads": 2,
    "layers": 1,
    "ff_dim": 32,
    "dropout": 0.0,
    "num_regions": 4,
    "num_samplings": 3,
    "region_sizes": (16, 32),
    "max_candidates": 16,
}
FACE = {"backbone": "mobilenetv3_small_050", "head_hidden": 8, "dropout": 0.0}
