"""DifIISR's loss-gradient guidance: visual (FFT spectrum, SSIM, MSE) and perceptual (VGG-16, SAM,
LPIPS, Sobel edge) losses, and their application to training by gradient injection or summation."""

from sr.guidance.inject import Guidance, GuidanceResult, guidance_gradient, injection_scale
from sr.guidance.perceptual import LPIPSLoss, SAMLoss, SobelEdgeLoss, VGGLoss
from sr.guidance.terms import TERMS, GuidanceLoss, build_term
from sr.guidance.visual import FFTLoss, MSELoss, SSIMLoss, normalized_log_spectrum, ssim

__all__ = [
    "FFTLoss",
    "Guidance",
    "GuidanceLoss",
    "GuidanceResult",
    "LPIPSLoss",
    "MSELoss",
    "SAMLoss",
    "SSIMLoss",
    "SobelEdgeLoss",
    "TERMS",
    "VGGLoss",
    "build_term",
    "guidance_gradient",
    "injection_scale",
    "normalized_log_spectrum",
    "ssim",
]
