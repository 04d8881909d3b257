"""Pure torch math of metrics: stateless functions from tensors to tensors or numbers.

No files, no printing, no device choice: inputs come in as tensors on any device and results stay there.
The registered ``Metric`` classes of ``perceptiq.metrics`` are thin wrappers over these functions.
"""
