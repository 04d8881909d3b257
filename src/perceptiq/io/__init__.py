"""Reading and writing files: prediction and ground-truth tables, challenge submission files, and images.

Everything that touches the file system lives here (layer 3 of ARCHITECTURE.md); the layers below take
arrays and tensors only. Errors about a file are :class:`perceptiq.errors.DataFileError` naming the file.
"""
