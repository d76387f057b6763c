"""Plain convolutional encoder/decoder: the baseline every deep model is compared with.

Both work on any image size, down to 1x1: the encoder halves the resolution at each level
(ceil), and the decoder upsamples to the exact sizes the encoder saw (resize-convolution,
which avoids the checkerboard artefacts of transposed convolutions).
"""

import math

import torch
from torch import nn

__all__ = [
    "ConvAutoencoderModule",
    "ConvDecoder",
    "ConvEncoder",
    "UpsampleNearest",
    "level_sizes",
]


def level_sizes(height, width, n_levels):
    """Spatial sizes after each stride-2 level: ``[(H, W), (ceil(H/2), ceil(W/2)), ...]``."""
    sizes = [(height, width)]
    for _ in range(n_levels):
        h, w = sizes[-1]
        sizes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return sizes


class UpsampleNearest(nn.Module):
    """Nearest-neighbour upsampling to an exact size, deterministic on GPUs.

    :class:`torch.nn.Upsample` accumulates its gradient with atomic adds on CUDA, so two
    identical runs differ; repeating pixels by broadcasting has a plain sum as its gradient.

    Parameters
    ----------
    size : tuple of int
        Output ``(H, W)``. Each input pixel is repeated ``ceil(size / input size)`` times
        and the result cropped to ``size``.
    """

    def __init__(self, size):
        super().__init__()
        self.size = tuple(int(s) for s in size)

    def forward(self, X):
        b, c, h, w = X.shape
        fh, fw = -(-self.size[0] // h), -(-self.size[1] // w)
        X = X[:, :, :, None, :, None].expand(b, c, h, fh, w, fw).reshape(b, c, h * fh, w * fw)
        return X[:, :, : self.size[0], : self.size[1]]


def _conv_block(in_channels, out_channels, stride=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
        nn.LeakyReLU(0.1, inplace=True),
    )


class ConvEncoder(nn.Module):
    """Stride-2 conv levels, then a linear map of the flattened features to the latent.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)``.
    widths : sequence of int
        Channels at each level; one stride-2 level per entry.
    n_components : int
        Latent size.
    """

    def __init__(self, image_shape, widths, n_components):
        super().__init__()
        channels, height, width = image_shape
        layers, previous = [], channels
        for w in widths:
            layers += [_conv_block(previous, w, stride=2), _conv_block(w, w)]
            previous = w
        self.features = nn.Sequential(*layers)
        self.sizes = level_sizes(height, width, len(widths))
        h, w = self.sizes[-1]
        self.flat_features = previous * h * w
        self.head = nn.Linear(self.flat_features, n_components)

    def forward(self, X):
        return self.head(self.features(X).flatten(1))


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: linear, then upsample + conv back to ``(C, H, W)``."""

    def __init__(self, image_shape, widths, n_components):
        super().__init__()
        channels, height, width = image_shape
        widths = list(widths)
        self.sizes = level_sizes(height, width, len(widths))
        self.start_shape = (widths[-1], *self.sizes[-1])
        self.head = nn.Linear(n_components, math.prod(self.start_shape))
        blocks = []
        reversed_widths = widths[::-1]
        for i, w in enumerate(reversed_widths):
            out = reversed_widths[i + 1] if i + 1 < len(widths) else widths[0]
            size = self.sizes[len(widths) - 1 - i]
            blocks.append(nn.Sequential(UpsampleNearest(size), _conv_block(w, out)))
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv2d(widths[0], channels, 3, padding=1)

    def forward(self, Z):
        X = self.head(Z).view(-1, *self.start_shape)
        return self.out(self.blocks(torch.nn.functional.leaky_relu(X, 0.1)))


class ConvAutoencoderModule(nn.Module):
    """Encoder + decoder; ``forward`` returns ``(reconstruction, latent)``."""

    def __init__(self, image_shape, widths=(16, 32, 64), n_components=16):
        super().__init__()
        self.encoder = ConvEncoder(image_shape, widths, n_components)
        self.decoder = ConvDecoder(image_shape, widths, n_components)

    def forward(self, X):
        Z = self.encoder(X)
        return self.decoder(Z), Z
