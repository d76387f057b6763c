"""Load folders of PNG / JPEG images, optionally labelled by sub-folder."""

import functools
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._common import list_files, read_each, reading
from ._lazy import LazyImageFiles

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def load_image_folder(
    path, *, labels_from_subfolders=False, grayscale=False, skip_bad=False, lazy=False
):
    """Load PNG / JPEG images as a channels-first float32 array in [0, 1].

    Parameters
    ----------
    path : str, path-like, or list of them
        A folder (its ``*.png``, ``*.jpg``, ``*.jpeg`` files in sorted order, not
        recursively), an image file, or a list of files and folders. With
        ``labels_from_subfolders=True``, a single folder whose sub-folders are the classes.
    labels_from_subfolders : bool, default=False
        If True, every sub-folder of ``path`` (sorted by name, hidden ones ignored) is a
        class and its images are labelled with it; images directly in ``path`` are ignored.
    grayscale : bool, default=False
        If True, convert every image to one luminance channel.
    skip_bad : bool, default=False
        If True, files that cannot be read are skipped with a warning and listed in
        ``skipped`` instead of raising.
    lazy : bool, default=False
        If True, ``images`` is a :class:`~skastro.datasets.LazyImageFiles` that decodes the
        files when it is indexed (a folder larger than memory is then read batch by batch).
        Every file is still decoded and checked once here, as in an eager load (same errors,
        same ``skip_bad``); only its pixels are not kept.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (n, C, H, W) float32 in [0, 1]: C = 1 for grayscale images (8- or 16-bit)
        and C = 3 otherwise (RGB; alpha is dropped, palettes are expanded); ``filenames``;
        ``ids`` (file names without suffix, prefixed by the class folder when labelled);
        ``target`` (n,) int64 and ``target_names`` (the sub-folder names) when
        ``labels_from_subfolders``, else None; ``skipped``, a list of ``(filename, reason)``.

    Raises
    ------
    DataLoadError
        A file is not a readable image (truncated, corrupt, not an image).
    ValueError
        Images differ in size or in number of channels (both files are named).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from skastro.datasets import load_image_folder
    >>> root = tempfile.mkdtemp()
    >>> for label in ("elliptical", "spiral"):
    ...     os.mkdir(os.path.join(root, label))
    ...     for i in range(2):
    ...         pixels = np.full((16, 16), 255 * i, dtype=np.uint8)
    ...         Image.fromarray(pixels).save(os.path.join(root, label, f"{i}.png"))
    >>> data = load_image_folder(root, labels_from_subfolders=True)
    >>> data.images.shape, data.target.tolist(), data.target_names.tolist()
    ((4, 1, 16, 16), [0, 0, 1, 1], ['elliptical', 'spiral'])
    """
    if labels_from_subfolders:
        root = Path(path) if isinstance(path, str | Path) else None
        if root is None or not root.is_dir():
            raise ValueError(
                f"labels_from_subfolders=True needs one folder whose sub-folders are the "
                f"classes; got {path!r}"
            )
        classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        files, labels = [], []
        for code, folder in enumerate(classes):
            found = sorted(
                p
                for p in folder.iterdir()
                if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES)
            )
            files.extend(found)
            labels.extend([code] * len(found))
        if not files:
            raise FileNotFoundError(
                f"no images ({', '.join(IMAGE_SUFFIXES)}) in the sub-folders of {root}"
            )
        target_names = np.array([folder.name for folder in classes])
    else:
        files = list_files(path, IMAGE_SUFFIXES, "image")
        labels = target_names = None

    read_one = functools.partial(_read_image, grayscale=grayscale)
    check_one = functools.partial(_image_shape, grayscale=grayscale) if lazy else read_one
    arrays, kept, skipped = read_each(files, check_one, skip_bad)
    shapes = arrays if lazy else [array.shape for array in arrays]
    for shape, filename in zip(shapes, kept):
        if shape != shapes[0]:
            hint = (
                "; pass grayscale=True to load them all as one channel"
                if shape[1:] == shapes[0][1:]
                else "; resize them to one size first"
            )
            raise ValueError(
                f"images differ in shape (channels, height, width): {kept[0]} has "
                f"{shapes[0]} but {filename} has {shape}{hint}"
            )
    target = None
    if labels is not None:
        kept_set = {str(f) for f in kept}
        target = np.array([c for f, c in zip(files, labels) if str(f) in kept_set], dtype=np.int64)
    ids = [f"{f.parent.name}/{f.stem}" if labels_from_subfolders else f.stem for f in kept]
    images = LazyImageFiles(kept, read_one, shapes[0]) if lazy else np.stack(arrays)
    return Bunch(
        images=images,
        filenames=[str(f) for f in kept],
        ids=ids,
        target=target,
        target_names=target_names,
        skipped=skipped,
    )


def _image_shape(filename, grayscale=False):
    """Decode and check one file as :func:`_read_image` does; keep only its shape."""
    return _read_image(filename, grayscale=grayscale).shape


def _read_image(filename, grayscale=False):
    from PIL import Image

    # Pillow raises on truncated or unidentifiable files; its warnings (e.g. about palette
    # transparency) do not mean the pixels are wrong, so none is fatal
    with reading(filename, fatal_warnings=(), what="PNG/JPEG image"):
        # verify() checks the file's structure (PNG chunk CRCs, a final IEND): a file cut
        # just after its pixel data would otherwise decode without complaint. It leaves the
        # image unusable, hence the second open.
        with Image.open(filename) as image:
            image.verify()
        with Image.open(filename) as image:
            image.load()
            return _to_array(image, grayscale)


def _to_array(image, grayscale):
    if image.mode in _SIXTEEN_BIT:
        # 16-bit grayscale PNGs (astronomical exports often are)
        data = np.asarray(image, dtype=np.float32) / 65535.0
        return np.clip(data, 0.0, 1.0)[None]
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32)[None]
    if grayscale or image.mode in ("L", "LA", "1"):
        return (np.asarray(image.convert("L"), dtype=np.float32) / 255.0)[None]
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))
