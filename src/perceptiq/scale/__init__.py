"""Batch scoring on a Ray cluster and multi-GPU training with torchrun.

Named now so the layout shows the whole toolkit; built by a later issue.
"""
