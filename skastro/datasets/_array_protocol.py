"""What the lazily read image arrays (HDF5, files of a folder) share: the array protocol.

A subclass sets ``self._shape`` and implements ``__getitem__``; it then reads like a float32
numpy array of that shape, one slice at a time, and ``np.asarray`` reads it whole.
"""

import numpy as np

__all__ = ["LazyFloat32Array"]


class LazyFloat32Array:
    """Base of read-on-demand float32 image arrays: ``shape``, ``dtype``, ``len``, ``np.asarray``.

    Examples
    --------
    >>> import numpy as np
    >>> class Ramp(LazyFloat32Array):
    ...     def __init__(self, n):
    ...         self._shape = (n, 1, 2, 2)
    ...     def __getitem__(self, index):
    ...         ramp = np.arange(self._shape[0], dtype=np.float32)[:, None, None, None]
    ...         return np.broadcast_to(ramp, self._shape)[index]
    >>> ramp = Ramp(3)
    >>> ramp.shape, ramp.dtype, ramp.ndim, ramp.size, len(ramp)
    ((3, 1, 2, 2), dtype('float32'), 4, 12, 3)
    >>> np.asarray(ramp)[:, 0, 0, 0].tolist()
    [0.0, 1.0, 2.0]
    """

    @property
    def shape(self):
        return self._shape

    @property
    def dtype(self):
        return np.dtype(np.float32)

    @property
    def ndim(self):
        return len(self._shape)

    @property
    def size(self):
        return int(np.prod(self._shape))

    def __len__(self):
        return self._shape[0]

    def __array__(self, dtype=None, copy=None):
        data = self[:]
        return data if dtype is None else data.astype(dtype, copy=False)
