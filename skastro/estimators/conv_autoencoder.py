"""ConvAutoencoder: the plain convolutional autoencoder every deep model is compared with."""

import numbers

from sklearn.utils._param_validation import Interval

from skastro.base import AutoencoderMixin, DeepEstimator
from skastro.losses import mse_loss, ssim_loss, weighted_sum
from skastro.nn.conv import ConvAutoencoderModule

__all__ = ["ConvAutoencoder"]


class ConvAutoencoder(AutoencoderMixin, DeepEstimator):
    """Plain convolutional autoencoder with a flat latent, as a scikit-learn transformer.

    The encoder halves the resolution at each level (one level per entry of ``widths``) and a
    linear layer maps the features to ``n_components`` latent units; the decoder mirrors it.
    Training minimises the mean squared error of the reconstruction, optionally plus an SSIM
    term; with ``augment=True`` each batch is randomly rotated by multiples of 90 degrees and
    flipped. Images are standardised per channel with the training images' statistics.

    Parameters
    ----------
    n_components : int, default=16
        Size of the latent vector returned by :meth:`transform`.
    widths : tuple of int, default=(16, 32, 64)
        Channels of the encoder levels (mirrored by the decoder).
    mse_weight : float, default=1.0
        Weight of the mean squared error term (``loss_mse`` in ``history_``).
    ssim_weight : float, default=0.0
        Weight of the ``1 - SSIM`` term (``loss_ssim``); 0 disables it.
    max_epochs : int, default=20
        Training epochs.
    batch_size : int or "auto", default="auto"
        Mini-batch size (capped at the number of images). ``"auto"`` is 64 on a CPU; on
        a GPU it is the largest of 32, 64, ..., 1024 (from 64 up) that fits in half the
        free GPU memory and leaves at least 32 steps per epoch, with ``lr`` scaled by
        ``sqrt(batch_size_ / 64)``; see ``batch_size_`` and ``lr_``.
    lr : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=0.0
        AdamW weight decay.
    augment : bool, default=False
        Train on randomly rotated (by 90 degrees) and flipped copies.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    precision : {"32", "bf16", "16"}, default="32"
        ``"bf16"`` trains and infers under bfloat16 autocast (mixed precision) on a CUDA GPU
        or a CPU; ``"16"`` under float16 autocast with a gradient scaler, on a CUDA GPU only
        (elsewhere float32, with a warning). ``transform`` output is float32 either way.
    num_workers : int or "auto", default="auto"
        Processes that read batches ahead of training and inference. ``"auto"``: none for
        in-memory arrays; for lazily read data (memmaps, HDF5, FITS folders) one per four
        CPU cores, between 1 and 4.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and augmentation; the same value on the same machine
        gives identical ``transform`` output.
    verbose : int, default=0
        0 is silent; 1 prints the epoch table (and a progress bar on a terminal).
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks (e.g. ``skorch.callbacks.Checkpoint``).
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` of flat ``(n, F)`` input; one entry may be -1.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them by the per-channel
        mean of the training images.
    warm_start : bool, default=False
        When True, calling ``fit`` again continues training instead of starting afresh.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The skorch net that trained the module.
    module_ : torch.nn.Module
        The trained encoder/decoder.
    history_ : skorch.History
        One row per epoch: ``train_loss``, ``loss_mse``, ``loss_ssim``, ``dur``.
    image_shape_ : tuple of int
        ``(C, H, W)`` seen in ``fit``.
    n_features_in_ : int
        ``C * H * W``.
    channel_mean_, channel_std_ : ndarray of shape (C,)
        Per-channel statistics used to standardise inputs.
    batch_size_ : int
        The batch size used (``batch_size``, or what ``"auto"`` chose).
    lr_ : float
        The learning rate used (``lr``, scaled when ``"auto"`` chose a larger batch).
    precision_ : str
        The precision used in training: ``precision``, or ``"32"`` where it does not apply.

    See Also
    --------
    EquivariantAutoencoder : rotation/flip-invariant latents.
    sklearn.decomposition.PCA : the linear baseline.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro import ConvAutoencoder
    >>> X = np.random.default_rng(0).random((32, 1, 16, 16), dtype=np.float32)
    >>> ae = ConvAutoencoder(n_components=4, max_epochs=1, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (32, 4)
    >>> ae.reconstruct(X).shape
    (32, 1, 16, 16)
    """

    _parameter_constraints = {
        **DeepEstimator._parameter_constraints,
        "widths": [tuple, list],
        "mse_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "ssim_weight": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=16,
        *,
        widths=(16, 32, 64),
        mse_weight=1.0,
        ssim_weight=0.0,
        max_epochs=20,
        batch_size="auto",
        lr=1e-3,
        weight_decay=0.0,
        augment=False,
        device="auto",
        precision="32",
        num_workers="auto",
        random_state=None,
        verbose=0,
        callbacks=None,
        image_shape=None,
        nan_policy="raise",
        warm_start=False,
    ):
        self.n_components = n_components
        self.widths = widths
        self.mse_weight = mse_weight
        self.ssim_weight = ssim_weight
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.augment = augment
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.image_shape = image_shape
        self.nan_policy = nan_policy
        self.warm_start = warm_start

    def _build_module(self, image_shape):
        return ConvAutoencoderModule(image_shape, tuple(self.widths), self.n_components)

    def _compute_loss(self, module, X, training):
        reconstruction, _ = module(X)
        terms = {"mse": mse_loss(reconstruction, X)}
        if self.ssim_weight:
            terms["ssim"] = ssim_loss(reconstruction, X)
        return weighted_sum(terms, {"mse": self.mse_weight, "ssim": self.ssim_weight})

    def _encode(self, module, X):
        return module.encoder(X)

    def _decode_batch(self, module, X):
        return module(X)[0]
