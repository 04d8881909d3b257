"""Full-reference metrics as pure functions of ``(image, reference)`` batches ``(B, C, H, W)`` -> ``(B,)``.

Each function takes the distorted image first and the reference second, values in
``[0, data_range]``, and the shared options ``color`` (``"rgb"``, ``"y"`` BT.601 luma, ``"gray"``
MATLAB ``rgb2gray``), ``crop_border`` and ``quantize`` (round the converted channels to 8-bit levels
as MATLAB does on ``uint8`` images). Every module docstring names the reference it reproduces.
"""

from perceptiq.functional.fr.fsim import fsim as fsim
from perceptiq.functional.fr.gmsd import gmsd as gmsd
from perceptiq.functional.fr.ms_ssim import ms_ssim as ms_ssim
from perceptiq.functional.fr.psnr import psnr as psnr
from perceptiq.functional.fr.ssim import ssim as ssim
from perceptiq.functional.fr.vif import vif_p as vif_p

__all__ = ["psnr", "ssim", "ms_ssim", "gmsd", "vif_p", "fsim"]
