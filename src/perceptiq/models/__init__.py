"""Learned quality models, one file per family (CLIP/SigLIP prompt models, face models, hybrid ViT+CNN,
text-to-image alignment and structure heads, VLM scorers), created by name with ``create_model``.

Filled in by the learned-models issue; named now so the layout shows the whole toolkit.
"""
