"""A small ResNet backbone and an MLP expander, for self-supervised embedders such as VICReg.

The backbone works on any number of input bands and any image size (down to 1x1): every stage
after the first halves the resolution (ceil), and global average pooling makes the output size
independent of the image size. Torch only: no scikit-learn here.
"""

from torch import nn

__all__ = ["BasicBlock", "Expander", "ResNetBackbone", "VICRegModule"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut.

    The residual block of He et al. (2016), "Deep Residual Learning for Image Recognition".

    Parameters
    ----------
    in_channels, out_channels : int
        Input and output channels.
    stride : int, default=1
        Stride of the first convolution (2 halves the resolution).

    Examples
    --------
    >>> import torch
    >>> BasicBlock(3, 8, stride=2)(torch.zeros(2, 3, 9, 9)).shape
    torch.Size([2, 8, 5, 5])
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, X):
        out = self.relu(self.bn1(self.conv1(X)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(X))


class ResNetBackbone(nn.Module):
    """Small ResNet: a stem, stages of residual blocks, global pooling and a linear head.

    Parameters
    ----------
    in_channels : int
        Number of input bands.
    widths : sequence of int, default=(16, 32, 64)
        Channels of each stage; every stage after the first halves the resolution, so the
        depth is ``len(widths) * n_blocks`` residual blocks.
    n_blocks : int, default=1
        Residual blocks per stage.
    n_components : int, default=64
        Size of the representation (the output of the linear head after pooling).
    stem_stride : int, default=1
        Stride of the stem convolution; 2 halves large images once more before the first
        stage, which makes training on 64-pixel images about four times cheaper.

    Examples
    --------
    >>> import torch
    >>> backbone = ResNetBackbone(5, widths=(8, 16), n_components=10)
    >>> backbone(torch.zeros(3, 5, 32, 32)).shape
    torch.Size([3, 10])
    """

    def __init__(
        self, in_channels, widths=(16, 32, 64), n_blocks=1, n_components=64, stem_stride=1
    ):
        super().__init__()
        widths = [int(w) for w in widths]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        blocks, previous = [], widths[0]
        for i, width in enumerate(widths):
            for j in range(n_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(BasicBlock(previous, width, stride=stride))
                previous = width
        self.stages = nn.Sequential(*blocks)
        # global pooling makes the representation independent of the image size and position
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(previous, n_components)
        self.n_components = n_components

    def forward(self, X):
        return self.head(self.pool(self.stages(self.stem(X))).flatten(1))


class Expander(nn.Module):
    """MLP from the representation to the embedding the VICReg loss sees.

    Linear + batch norm + ReLU for every layer but the last, which is a plain linear map, as
    in Bardes et al. (2022).

    Parameters
    ----------
    in_features : int
        Size of the representation.
    widths : sequence of int
        Output size of each layer; the last one is the embedding size.

    Examples
    --------
    >>> import torch
    >>> Expander(4, (16, 8))(torch.zeros(2, 4)).shape
    torch.Size([2, 8])
    """

    def __init__(self, in_features, widths):
        super().__init__()
        layers, previous = [], in_features
        widths = [int(w) for w in widths]
        for width in widths[:-1]:
            layers += [nn.Linear(previous, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            previous = width
        layers.append(nn.Linear(previous, widths[-1]))
        self.layers = nn.Sequential(*layers)

    def forward(self, H):
        return self.layers(H)


class VICRegModule(nn.Module):
    """Backbone + expander; ``forward`` returns ``(representation, embedding)``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)``.
    widths, n_blocks, n_components, stem_stride
        Passed to :class:`ResNetBackbone`.
    expander_widths : sequence of int
        Passed to :class:`Expander`.

    Examples
    --------
    >>> import torch
    >>> module = VICRegModule((1, 16, 16), widths=(8,), n_components=4, expander_widths=(8, 8))
    >>> [t.shape for t in module(torch.zeros(2, 1, 16, 16))]
    [torch.Size([2, 4]), torch.Size([2, 8])]
    """

    def __init__(
        self,
        image_shape,
        widths=(16, 32, 64),
        n_blocks=1,
        n_components=64,
        expander_widths=(256, 256, 256),
        stem_stride=1,
    ):
        super().__init__()
        self.backbone = ResNetBackbone(
            image_shape[0], widths, n_blocks, n_components, stem_stride=stem_stride
        )
        self.expander = Expander(n_components, expander_widths)

    def forward(self, X):
        representation = self.backbone(X)
        return representation, self.expander(representation)
