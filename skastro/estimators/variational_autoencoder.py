"""VariationalAutoencoder: a convolutional VAE with a standard normal prior."""

import numbers

from sklearn.utils._param_validation import Interval

from skastro.base import AutoencoderMixin, DeepEstimator
from skastro.losses import gaussian_kl_standard, mse_loss, weighted_sum
from skastro.nn.vae import ConvVAEModule

__all__ = ["VariationalAutoencoder"]


class VariationalAutoencoder(AutoencoderMixin, DeepEstimator):
    """Convolutional variational autoencoder (beta-VAE) as a scikit-learn transformer.

    The encoder (the same stride-2 convolutional levels as :class:`ConvAutoencoder`) outputs
    the mean and log-variance of a Gaussian posterior over ``n_components`` latent units; a
    sample of it is decoded during training, its mean otherwise. The loss is the mean squared
    reconstruction error per pixel value plus ``beta`` times the KL divergence to the standard
    normal prior ``N(0, I)``, per pixel value as well (``loss_kl`` in ``history_`` is the KL in
    nats per image). Dividing both terms by the number of pixel values ``D = C * H * W`` keeps
    ``beta`` meaningful across image sizes: ``beta=1`` is the evidence lower bound of a Gaussian
    likelihood of variance ½ in standardised units, larger values trade reconstruction for a
    smoother, more disentangled latent.

    This is the baseline of the unsupervised star-galaxy write-up (Sun et al. 2017): its
    posterior means, mapped to one dimension with a manifold learner and thresholded, separate
    stars from galaxies with AUC 0.75 there. :class:`CondVAEClassifier` improves on it.

    Parameters
    ----------
    n_components : int, default=8
        Number of latent units; :meth:`transform` returns their posterior means.
    widths : tuple of int, default=(16, 32, 64)
        Channels of the encoder levels (mirrored by the decoder).
    beta : float, default=1.0
        Weight of the KL term (``beta=0`` is a plain autoencoder with noisy latents).
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
        Seeds initialisation, sampling, shuffling and augmentation.
    verbose : int, default=0
        0 is silent; 1 prints the epoch table.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` of flat ``(n, F)`` input; one entry may be -1.
    nan_policy : {"raise", "fill"}, default="raise"
        NaN/inf pixels raise a ``ValueError``; ``"fill"`` replaces them by channel means.
    warm_start : bool, default=False
        When True, calling ``fit`` again continues training.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The skorch net that trained the module.
    module_ : torch.nn.Module
        The trained :class:`skastro.nn.vae.ConvVAEModule`.
    history_ : skorch.History
        One row per epoch: ``train_loss``, ``loss_mse``, ``loss_kl``, ``dur``.
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
    CondVAEClassifier : one bimodal-prior class unit plus free units.
    ConvAutoencoder : the same network without the variational latent.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro import VariationalAutoencoder
    >>> X = np.random.default_rng(0).random((32, 1, 16, 16), dtype=np.float32)
    >>> vae = VariationalAutoencoder(n_components=2, max_epochs=1, random_state=0).fit(X)
    >>> vae.transform(X).shape
    (32, 2)
    >>> sorted(k for k in vae.history_[-1] if k.startswith("loss_"))
    ['loss_kl', 'loss_mse']
    """

    _parameter_constraints = {
        **DeepEstimator._parameter_constraints,
        "widths": [tuple, list],
        "beta": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=8,
        *,
        widths=(16, 32, 64),
        beta=1.0,
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
        self.beta = beta
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
        return ConvVAEModule(image_shape, tuple(self.widths), self.n_components)

    def _compute_loss(self, module, X, training):
        reconstruction, mu, logvar = module(X)
        terms = {"mse": mse_loss(reconstruction, X), "kl": gaussian_kl_standard(mu, logvar)}
        # the KL term is per image, the MSE per pixel: beta weighs the KL per pixel
        return weighted_sum(terms, {"kl": self.beta / X[0].numel()})

    def _encode(self, module, X):
        return module.encode(X)[0]

    def _decode_batch(self, module, X):
        # the posterior mean is decoded: reconstructions are deterministic
        return module.decoder(module.encode(X)[0])
