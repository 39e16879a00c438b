"""Weight-free infrared image statistics: SD, AG, SF, EI (no-reference, higher = more contrast / detail).

These four are the standard no-reference statistics of the thermal-imaging and infrared/visible fusion
literature, e.g. the survey of J. Ma, Y. Ma and C. Li, "Infrared and visible image fusion methods and
applications: A survey", Information Fusion 45 (2019) 153-178, Sec. 5 (SD, AG, SF), and the benchmark of
X. Zhang, P. Ye and G. Xiao, "VIFB: A Visible and Infrared Image Fusion Benchmark", CVPR Workshops 2020
(SD, AG, SF, EI). Each function follows the formula quoted in its docstring.

Every function takes float images [B, C, H, W] in [0, 1] and returns [B] float64. Images are scored on the
grey-level scale [0, 255] the literature uses; C = 3 is turned into grey with the ITU-R BT.601 weights
(MATLAB ``rgb2gray``), so an infrared frame replicated to three equal channels scores as the frame itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_BT601 = (0.299, 0.587, 0.114)


def grey_levels(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] in [0, 1] -> [B, H, W] float64 grey levels in [0, 255]."""
    x = x.to(torch.float64)
    if x.shape[1] == 3:
        w = torch.tensor(_BT601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * w).sum(dim=1, keepdim=True)
    elif x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return x[:, 0] * 255.0


def standard_deviation(x: torch.Tensor) -> torch.Tensor:
    """SD = sqrt( 1/(MN) sum_ij (F(i,j) - mu)^2 ), mu the mean grey level (Ma et al. 2019, Eq. "SD"; VIFB).

    The population standard deviation of the grey levels: global contrast.
    """
    g = grey_levels(x)
    return g.flatten(1).std(dim=1, correction=0)


def average_gradient(x: torch.Tensor) -> torch.Tensor:
    """AG = 1/((M-1)(N-1)) sum_{i<M, j<N} sqrt( ((F(i+1,j)-F(i,j))^2 + (F(i,j+1)-F(i,j))^2) / 2 ).

    Forward differences over the (M-1) x (N-1) grid of pixels that have both neighbours (Ma et al. 2019,
    Eq. "AG"; VIFB): mean local gradient magnitude, i.e. sharpness / fine detail.
    """
    g = grey_levels(x)
    dx = g[:, :-1, 1:] - g[:, :-1, :-1]
    dy = g[:, 1:, :-1] - g[:, :-1, :-1]
    return torch.sqrt((dx**2 + dy**2) / 2).flatten(1).mean(dim=1)


def spatial_frequency(x: torch.Tensor) -> torch.Tensor:
    """SF = sqrt(RF^2 + CF^2), RF^2 = 1/(MN) sum_{i, j>=2} (F(i,j)-F(i,j-1))^2, CF^2 = 1/(MN) sum_{i>=2, j}
    (F(i,j)-F(i-1,j))^2 (Eskicioglu and Fisher 1995, as used by Ma et al. 2019 and VIFB).

    Both sums are normalised by the full M*N, as the formula is written: overall activity level.
    """
    g = grey_levels(x)
    mn = g.shape[1] * g.shape[2]
    rf2 = ((g[:, :, 1:] - g[:, :, :-1]) ** 2).flatten(1).sum(dim=1) / mn
    cf2 = ((g[:, 1:, :] - g[:, :-1, :]) ** 2).flatten(1).sum(dim=1) / mn
    return torch.sqrt(rf2 + cf2)


def edge_intensity(x: torch.Tensor) -> torch.Tensor:
    """EI = 1/(MN) sum_ij sqrt( Sx(i,j)^2 + Sy(i,j)^2 ), Sx / Sy the horizontal / vertical Sobel responses
    (kernels [[-1,0,1],[-2,0,2],[-1,0,1]] and its transpose) with replicated borders (VIFB, "EI").

    The mean Sobel gradient magnitude: edge strength.
    """
    g = grey_levels(x)[:, None]
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=g.dtype, device=g.device)
    padded = F.pad(g, (1, 1, 1, 1), mode="replicate")
    sx = F.conv2d(padded, sobel.view(1, 1, 3, 3))
    sy = F.conv2d(padded, sobel.t().contiguous().view(1, 1, 3, 3))
    return torch.sqrt(sx**2 + sy**2).flatten(1).mean(dim=1)
