"""What every classic feature transformer shares: validation, batching, feature names."""

import math

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from skastro._validation import check_images
from skastro.distributed._arrays import accepts_dask

# Pixels (float32 values) read and processed per batch: bounds memory for memmaps and big cubes
# while keeping batches large enough for NumPy's vectorised loops to dominate the run time.
_BATCH_VALUES = 4 * 2**20


class _ImageTransformer(TransformerMixin, BaseEstimator):
    """Validation, batching and feature names shared by the transformers of this package.

    Subclasses implement ``_transform_batch(images)`` on native float32 ``(b, C, H, W)``
    batches and either set ``_image_output = True`` (output is an image, by default of the
    input's shape - see ``_output_image_shape`` - returned in the input's layout) or implement
    ``_n_features_out()``.
    """

    _image_output = False

    def _check_params(self):
        """Check parameters that the constraints cannot express; subclasses extend it."""

    def _check_image_shape(self, image_shape):
        """Check parameters against the ``(C, H, W)`` of the training images, before any
        fitted attribute is set (a failed fit leaves the transformer unfitted)."""

    def _fit_images(self, image_shape):
        """Set fitted attributes that depend on the image shape; subclasses extend it."""

    def _output_image_shape(self, image_shape):
        """``(C, H, W)`` of the output images of an ``_image_output`` transformer."""
        return image_shape

    def _check_images(self, X, *, reset):
        data = check_images(
            X,
            image_shape=self.image_shape,
            nan_policy=self.nan_policy,
            expected_shape=None if reset else self.image_shape_,
            estimator_name=type(self).__name__,
        )
        # Feature names (pandas columns) exist only for flat input; sklearn's own helper keeps
        # them and warns on a mismatch. Called after check_images so a failed fit leaves no
        # fitted-looking attribute behind.
        if len(data.X.shape) == 2:
            validate_data(self, X, reset=reset, skip_check_array=True)
        elif reset and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if self.nan_policy == "fill":
            fitted = None if reset else getattr(self, "fill_values_", None)
            # nan_policy may have been switched to "fill" after a fit with "raise".
            data.fill_values = self._channel_means(data) if fitted is None else fitted
        return data

    @staticmethod
    def _channel_means(data):
        """Per-channel mean of the finite training pixels: the value NaN/inf pixels get."""
        n_channels = data.image_shape[0]
        sums = np.zeros(n_channels)
        counts = np.zeros(n_channels)
        for start, stop in data.iter_slices(_batch_size(data.image_shape)):
            raw = np.asarray(data.X[start:stop]).reshape(stop - start, n_channels, -1)
            raw = raw.astype(np.float64)
            finite = np.isfinite(raw)
            sums += np.where(finite, raw, 0.0).sum(axis=(0, 2))
            counts += finite.sum(axis=(0, 2))
        return (sums / np.maximum(counts, 1)).astype(np.float32)

    def fit(self, X, y=None):
        """Check the images and record their shape.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
            Training images. Flat rows need ``image_shape`` unless ``F`` is a perfect square.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        self._validate_params()
        self._check_params()
        data = self._check_images(X, reset=True)
        self._check_image_shape(data.image_shape)
        self.image_shape_ = data.image_shape
        self.n_features_in_ = math.prod(data.image_shape)
        if self.nan_policy == "fill":
            self.fill_values_ = data.fill_values
        elif hasattr(self, "fill_values_"):  # left over from an earlier fit with "fill"
            del self.fill_values_
        self._fit_images(data.image_shape)
        return self

    @accepts_dask
    def transform(self, X):
        """Compute the features (or filtered images) of ``X``.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, C, H, W) or (n, F)
            Images with the shape seen in :meth:`fit`.

        Returns
        -------
        Xt : ndarray, float32
            See the class description for the shape.
        """
        check_is_fitted(self)
        data = self._check_images(X, reset=False)
        n = len(data)
        if self._image_output:
            out = np.empty((n, *self._output_image_shape(data.image_shape)), dtype=np.float32)
        else:
            out = np.empty((n, self._n_features_out()), dtype=np.float32)
        for start, stop in data.iter_slices(_batch_size(data.image_shape)):
            out[start:stop] = self._transform_batch(data.read(slice(start, stop)))
        return data.to_layout(out) if self._image_output else out

    def _input_names(self, input_features):
        """Validate ``input_features`` as sklearn does and return the input feature names."""
        check_is_fitted(self)
        names_in = getattr(self, "feature_names_in_", None)
        if input_features is None:
            if names_in is not None:
                return names_in
            return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        input_features = np.asarray(input_features, dtype=object)
        if names_in is not None and not np.array_equal(input_features, names_in):
            raise ValueError("input_features is not equal to feature_names_in_")
        if len(input_features) != self.n_features_in_:
            raise ValueError(
                f"input_features should have length equal to number of features "
                f"({self.n_features_in_}), got {len(input_features)}"
            )
        return input_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # Every output is float32 (DESIGN.md): float64 input is not preserved.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _batch_size(image_shape):
    return max(1, _BATCH_VALUES // math.prod(image_shape))


def _pixel_grid(height, width):
    """Row and column coordinates of pixel centres, as float64 ``(H, 1)`` and ``(1, W)``."""
    rows = np.arange(height, dtype=np.float64)[:, None]
    cols = np.arange(width, dtype=np.float64)[None, :]
    return rows, cols
