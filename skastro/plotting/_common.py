"""What the plots share: axes and figures, image display, cluster colours."""

import numbers

import numpy as np

from skastro.preprocessing import ImageScaler

_NOISE_COLOR = "0.7"


def _new_axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _new_figure(fig, figsize):
    if fig is not None:
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def _display_array(image, band, stretch, percentile, reference=None):
    """A (C, H, W) image as a 2-D (one band) or (H, W, 3) (three bands) array in [0, 1].

    With ``reference`` the limits come from that image, so a reconstruction is shown on the
    same scale as its original.
    """
    bands = [band] if isinstance(band, numbers.Integral) else list(band)
    if len(bands) not in (1, 3):
        raise ValueError(f"band must be one channel index or three (RGB), got {band!r}")
    scaler = ImageScaler(stretch, percentile=percentile, per_image=False)
    scaler.fit((image if reference is None else reference)[bands][None])
    shown = scaler.transform(image[bands][None])[0]
    return shown[0] if len(bands) == 1 else np.moveaxis(shown, 0, -1)


def _show(ax, shown, cmap, origin="lower"):
    ax.imshow(shown, cmap=cmap, vmin=0, vmax=1, origin=origin, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _label_colors(n_labels):
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n_labels <= 10 else "tab20" if n_labels <= 20 else "turbo"]
    if n_labels <= 20:
        return [cmap(i) for i in range(n_labels)]
    return [cmap(x) for x in np.linspace(0, 1, n_labels)]


def _is_noise(labels):
    return labels < 0 if labels.dtype.kind in "iuf" else np.zeros(len(labels), dtype=bool)
