"""Residual convolutional autoencoder: the "robust AE" of the star-galaxy write-up.

Each level is a stride-2 convolution followed by a residual block (``x + f(x)``); residual
connections reproduce images visibly better than plain stacks at the same width (Sun et al.
2017, segmentation figures), and they keep gradients healthy when a latent term (a bimodal
prior) pulls on the encoder. The encoder exposes its intermediate feature maps by name, which
is what hypercolumn segmentation reads:

``"input"``
    the (standardised) image, full resolution;
``"enc0"``
    the stem convolution, full resolution;
``"enc1"`` ... ``"encL"``
    the encoder levels, at 1/2, 1/4, ... of the resolution (``L = len(widths)``);
``"decL"`` ... ``"dec1"``, ``"dec0"``
    the decoder stages mirroring them, ``"dec0"`` at full resolution.

Like :mod:`skastro.nn.conv`, every network works on any image size (ceil halving, exact
upsampling back to the sizes the encoder saw).
"""

import math

import torch
from torch import nn

from skastro.nn.conv import level_sizes

__all__ = [
    "ResidualAutoencoderModule",
    "ResidualBlock",
    "ResidualDecoder",
    "ResidualEncoder",
    "feature_map_names",
]


def _act():
    return nn.LeakyReLU(0.1)


def feature_map_names(n_levels):
    """Names of the feature maps of a residual autoencoder with ``n_levels`` levels.

    Examples
    --------
    >>> feature_map_names(2)
    ['input', 'enc0', 'enc1', 'enc2', 'dec2', 'dec1', 'dec0']
    """
    encoder = [f"enc{i}" for i in range(n_levels + 1)]
    decoder = [f"dec{i}" for i in range(n_levels, -1, -1)]
    return ["input", *encoder, *decoder]


class ResidualBlock(nn.Module):
    """``x + conv(act(conv(act(x))))``: two 3x3 convolutions around an identity shortcut.

    The second convolution starts at zero, so a fresh block is the identity and deep stacks
    train like shallow ones.

    Examples
    --------
    >>> block = ResidualBlock(4)
    >>> x = torch.randn(2, 4, 8, 8)
    >>> bool(torch.equal(block(x), x))
    True
    """

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            _act(),
            nn.Conv2d(channels, channels, 3, padding=1),
            _act(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, X):
        return X + self.body(X)


class ResidualEncoder(nn.Module):
    """Stem convolution, then one stride-2 convolution + residual block per level.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)``.
    widths : sequence of int
        Channels of each level; the stem uses ``widths[0]``.
    n_outputs : int
        Size of the linear head on the flattened last level.

    Examples
    --------
    >>> enc = ResidualEncoder((2, 16, 16), (4, 8), 3)
    >>> enc(torch.zeros(5, 2, 16, 16)).shape
    torch.Size([5, 3])
    >>> [tuple(f.shape[1:]) for f in enc.feature_maps(torch.zeros(1, 2, 16, 16)).values()]
    [(2, 16, 16), (4, 16, 16), (4, 8, 8), (8, 4, 4)]
    """

    def __init__(self, image_shape, widths, n_outputs):
        super().__init__()
        channels, height, width = image_shape
        widths = [int(w) for w in widths]
        self.stem = nn.Conv2d(channels, widths[0], 3, padding=1)
        levels, previous = [], widths[0]
        for w in widths:
            levels.append(
                nn.Sequential(
                    _act(), nn.Conv2d(previous, w, 3, stride=2, padding=1), ResidualBlock(w)
                )
            )
            previous = w
        self.levels = nn.ModuleList(levels)
        self.sizes = level_sizes(height, width, len(widths))
        h, w = self.sizes[-1]
        self.flat_features = previous * h * w
        self.head = nn.Linear(self.flat_features, n_outputs)

    def feature_maps(self, X):
        """Return ``{"input": X, "enc0": ..., "encL": ...}``, finest first."""
        maps = {"input": X}
        H = self.stem(X)
        maps["enc0"] = H
        for i, level in enumerate(self.levels, start=1):
            H = level(H)
            maps[f"enc{i}"] = H
        return maps

    def features(self, X):
        """The last level's feature map, before the head."""
        H = self.stem(X)
        for level in self.levels:
            H = level(H)
        return H

    def forward(self, X):
        return self.head(torch.nn.functional.leaky_relu(self.features(X), 0.1).flatten(1))


class ResidualDecoder(nn.Module):
    """Mirror of :class:`ResidualEncoder`: linear, then residual block + upsample-conv stages.

    Examples
    --------
    >>> dec = ResidualDecoder((2, 15, 15), (4, 8), 3)
    >>> dec(torch.zeros(5, 3)).shape
    torch.Size([5, 2, 15, 15])
    """

    def __init__(self, image_shape, widths, n_inputs):
        super().__init__()
        channels, height, width = image_shape
        widths = [int(w) for w in widths]
        n_levels = len(widths)
        self.sizes = level_sizes(height, width, n_levels)
        self.start_shape = (widths[-1], *self.sizes[-1])
        self.head = nn.Linear(n_inputs, math.prod(self.start_shape))
        stages = []
        for i in range(n_levels, 0, -1):
            w = widths[i - 1]
            out = widths[i - 2] if i >= 2 else widths[0]
            stages.append(
                nn.Sequential(
                    ResidualBlock(w),
                    nn.Upsample(size=self.sizes[i - 1], mode="nearest"),
                    nn.Conv2d(w, out, 3, padding=1),
                )
            )
        self.stages = nn.ModuleList(stages)
        self.out = nn.Sequential(_act(), nn.Conv2d(widths[0], channels, 3, padding=1))
        self.n_levels = n_levels

    def feature_maps(self, Z):
        """Return ``({"decL": ..., "dec0": ...}, reconstruction)``, coarsest first."""
        H = self.head(Z).view(-1, *self.start_shape)
        maps = {f"dec{self.n_levels}": H}
        for i, stage in zip(range(self.n_levels - 1, -1, -1), self.stages):
            H = stage(H)
            maps[f"dec{i}"] = H
        return maps, self.out(H)

    def forward(self, Z):
        H = self.head(Z).view(-1, *self.start_shape)
        for stage in self.stages:
            H = stage(H)
        return self.out(H)


class ResidualAutoencoderModule(nn.Module):
    """Residual encoder + decoder; ``forward`` returns ``(reconstruction, latent)``.

    Examples
    --------
    >>> ae = ResidualAutoencoderModule((1, 16, 16), (4, 8), 2)
    >>> maps = ae.feature_maps(torch.zeros(3, 1, 16, 16))
    >>> list(maps) == feature_map_names(2)
    True
    """

    def __init__(self, image_shape, widths=(8, 16, 32), n_components=8):
        super().__init__()
        self.encoder = ResidualEncoder(image_shape, widths, n_components)
        self.decoder = ResidualDecoder(image_shape, widths, n_components)

    def forward(self, X):
        Z = self.encoder(X)
        return self.decoder(Z), Z

    def feature_maps(self, X):
        """Every named feature map of one pass (see the module docstring)."""
        maps = self.encoder.feature_maps(X)
        Z = self.encoder.head(
            torch.nn.functional.leaky_relu(maps[next(reversed(maps))], 0.1).flatten(1)
        )
        decoder_maps, _ = self.decoder.feature_maps(Z)
        maps.update(decoder_maps)
        return maps
