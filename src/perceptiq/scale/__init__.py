"""Scoring past one machine: ``perceptiq score --engine ray`` (:mod:`perceptiq.scale.ray_engine`).

Ray is imported only when a Ray run starts (``pip install 'perceptiq[scale]'``).
"""
