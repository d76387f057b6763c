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
    n_bands = len(image)
    if not all(-n_bands <= b < n_bands for b in bands):
        raise ValueError(f"band={band!r} is out of range for images with {n_bands} band(s)")
    limits = (image if reference is None else reference)[bands]
    empty = ~np.isfinite(limits).reshape(len(bands), -1).any(axis=1)
    if empty.any():
        # a fully masked band has no limits to learn; it is shown blank (NaN), not refused
        limits = np.where(empty[:, None, None], 0.0, limits)
    scaler = ImageScaler(stretch, percentile=percentile, per_image=False)
    scaler.fit(limits[None])
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
