"""Networks of the ResShift family: the Swin-UNet denoiser and the VQ-f4 autoencoder."""

from sr.nn.unet import UNetModelSwin, UPSRUNetModelSwin
from sr.nn.vq import VQModelTorch

__all__ = ["UNetModelSwin", "UPSRUNetModelSwin", "VQModelTorch"]
