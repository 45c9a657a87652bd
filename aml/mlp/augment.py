"""Training-time augmentation of a whole batch of images (N, 3, 32, 32) at once, on its device."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, flip: bool = True,
                  crop_padding: int = 0) -> torch.Tensor:
    """Random horizontal flip and random crop with zero padding, on a whole batch (N, 3, 32, 32) at once."""
    N, _, H, W = x.shape
    dev = x.device
    if flip:
        mask = torch.rand(N, generator=generator, device=generator.device).to(dev) < 0.5
        x = torch.where(mask.view(N, 1, 1, 1), x.flip(3), x)
    if crop_padding:
        p = crop_padding
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (N,), generator=generator, device=generator.device).to(dev)
        dx = torch.randint(0, 2 * p + 1, (N,), generator=generator, device=generator.device).to(dev)
        rows = (dy.view(N, 1) + torch.arange(H, device=dev)).view(N, 1, H, 1)
        cols = (dx.view(N, 1) + torch.arange(W, device=dev)).view(N, 1, 1, W)
        n = torch.arange(N, device=dev).view(N, 1, 1, 1)
        c = torch.arange(x.shape[1], device=dev).view(1, -1, 1, 1)
        x = padded[n, c, rows, cols]
    return x
