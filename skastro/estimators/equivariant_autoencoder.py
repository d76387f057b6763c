"""EquivariantAutoencoder: rotation/flip-equivariant autoencoder with invariant latents."""

import numbers

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skastro.base import AutoencoderMixin, DeepEstimator
from skastro.losses import (
    PerceptualLoss,
    covariance_loss,
    data_range_of,
    invariance_loss,
    ms_ssim,
    mse_loss,
    ssim_loss,
    variance_loss,
    weighted_sum,
)

__all__ = ["GROUPS", "EquivariantAutoencoder"]

# The symmetry groups offered: "trivial" (an ordinary CNN with the same layout), rotations by
# 360/N degrees (C<N>) and rotations and flips (D<N>).
GROUPS = ("trivial", "C4", "C8", "D4", "D8", "D16")

# MS-SSIM compares the images at up to four scales; below this size there is only one.
_MS_SSIM_MIN_SIZE = 16


class EquivariantAutoencoder(AutoencoderMixin, DeepEstimator):
    """Autoencoder equivariant to rotations and flips, whose latent is invariant to them.

    The encoder is a stack of escnn steerable convolutions whose feature fields transform with
    the regular representation of ``group`` (e.g. D8: 8 rotations by 45 degrees, and flips);
    each level is an antialiased 2x downsampling that keeps the image centre, then a convolution
    and an ELU (downsampling first, like ConvAutoencoder's stride-2 levels, keeps the costly
    layers off the full-resolution grid). A last convolution gives ``n_components`` regular
    fields, from which a mirrored equivariant decoder reconstructs the image. The latent
    returned by :meth:`transform` is those fields pooled over the group (max over the
    orientations of each field) and then averaged over space: it does not change when an image
    is rotated by 90 degrees or flipped (up to float rounding). Other rotations are only
    approximately symmetries on a pixel grid: the D8 feature maps follow a 45-degree rotation to
    a few per cent, but the latent also reacts to the slight blur that interpolating a rotated
    image adds, so measure it (:func:`skastro.metrics.equivariance_error`, ``"rot45"``) on your
    data. This is the protoplanetary-disk method of the ML4SCI EXXA write-up, where the
    orientation of a disk on the sky carries no information.

    Training minimises a weighted sum of terms, each logged per epoch in ``history_``:
    ``loss_mse``, optionally ``loss_ssim`` or ``loss_ms_ssim``, ``loss_perceptual`` (distance
    between features of a frozen network you supply) and the VICReg-style ``loss_variance`` and
    ``loss_covariance`` on the latents, which keep every latent unit spread across the batch
    and decorrelate the units. With ``augment=True`` every batch is randomly rotated, flipped,
    scaled, sheared, optionally perspective-warped and blurred (kornia, see
    :func:`skastro.augment.affine_augmentation`).

    escnn builds its filter bases once per fit (and caches them per process); after fitting,
    :meth:`transform`, :meth:`reconstruct` and :meth:`score` run through plain torch modules
    exported from the escnn ones (:meth:`export`), which give the same outputs faster.

    Parameters
    ----------
    n_components : int, default=16
        Size of the invariant latent (regular fields at the bottleneck).
    group : {"D8", "D4", "D16", "C4", "C8", "trivial"}, default="D8"
        Symmetry group: ``"D<N>"`` for N rotations and flips, ``"C<N>"`` for N rotations only,
        ``"trivial"`` for an ordinary CNN of the same shape (for ablations; its latent is not
        invariant).
    widths : tuple of int, default=(32, 64, 128)
        Channels of the encoder levels (mirrored by the decoder); each level holds
        ``ceil(width / |G|)`` regular fields, so a D8 level (``|G| = 16``) of 32 channels has 2
        fields. One 2x downsampling per level. Keep at least 2 fields in the first level: with
        one, training is very slow.
    kernel_size : int, default=5
        Odd kernel size of the convolutions on the image's own channels (the first of the
        encoder and the last of the decoder); the inner ones are 3x3. On the pixel grid a
        larger kernel resolves the 45-degree orientations better.
    mse_weight : float, default=1.0
        Weight of the mean squared error (``loss_mse``).
    ssim_weight : float, default=0.0
        Weight of ``1 - SSIM`` (``loss_ssim``).
    ms_ssim_weight : float, default=0.0
        Weight of ``1 - MS-SSIM`` (``loss_ms_ssim``); needs images of at least 16 px.
    perceptual_weight : float, default=0.0
        Weight of the perceptual loss (``loss_perceptual``); needs ``perceptual_module``.
    perceptual_module : torch.nn.Module or None, default=None
        Frozen feature network for the perceptual loss (see Notes); it is copied and never
        trained. Grayscale images are repeated to the channels its first ``Conv2d`` expects.
    variance_weight : float, default=1.0
        Weight of the VICReg variance hinge on the latents (``loss_variance``).
    covariance_weight : float, default=0.04
        Weight of the VICReg covariance term on the latents (``loss_covariance``); VICReg's
        ratio of 25 to 1 between the two.
    invariance_weight : float, default=0.0
        Weight of the VICReg invariance term (``loss_invariance``): the mean squared distance
        between the latents of each training image and of its augmented copy. The group
        structure already makes the latent invariant to 90-degree rotations and flips; this
        term also makes it robust to what the architecture cannot guarantee (other angles,
        interpolation, blur, scale, shear). Needs ``augment=True``; it costs one more encoder
        pass per batch.
    max_rotation : float, default=180.0
        Augmentation: rotations drawn in ``[-max_rotation, max_rotation]`` degrees.
    scale_range : tuple of float or None, default=(0.9, 1.1)
        Augmentation: zoom factor range (``None`` disables).
    max_shear : float, default=10.0
        Augmentation: shear angle in degrees (0 disables).
    perspective : float, default=0.0
        Augmentation: perspective distortion scale (0 disables).
    blur_sigma : tuple of float or None, default=(0.1, 1.0)
        Augmentation: Gaussian blur width range in pixels, applied to half of the images
        (``None`` disables).
    max_epochs : int, default=20
        Training epochs.
    batch_size : int or "auto", default="auto"
        Mini-batch size (capped at the number of images). ``"auto"`` is 32 on a CPU; on
        a GPU it is the largest of 32, 64, ..., 1024 (from 32 up) that fits in half the
        free GPU memory and leaves at least 32 steps per epoch, with ``lr`` scaled by
        ``sqrt(batch_size_ / 32)``; see ``batch_size_`` and ``lr_``.
        The variance and covariance terms need several images per batch; incomplete last batches
        are dropped while they are on.
    lr : float, default=2e-3
        AdamW learning rate.
    weight_decay : float, default=0.0
        AdamW weight decay.
    augment : bool, default=True
        Train on randomly transformed copies (see the augmentation parameters above).
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
        Extra skorch callbacks.
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
    module_ : EquivariantAutoencoderModule
        The trained escnn encoder/decoder (it runs its exported twin in eval mode).
    history_ : skorch.History
        One row per epoch: ``train_loss``, ``loss_mse`` and the other enabled terms, ``dur``.
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
    ConvAutoencoder : the plain convolutional baseline (latent not invariant).
    KFoldEnsemble : average several autoencoders trained on K-fold splits.
    skastro.metrics.equivariance_error : how much a latent moves under rotations and flips.

    Notes
    -----
    Nothing is downloaded. For the write-up's ResNet-18 perceptual loss, save the network once
    on a machine with torchvision and pass its first blocks::

        # elsewhere: torch.save(torchvision.models.resnet18(weights="DEFAULT"), "resnet18.pt")
        resnet = torch.load("resnet18.pt", weights_only=False)
        features = torch.nn.Sequential(*list(resnet.children())[:5])  # up to layer1
        ae = EquivariantAutoencoder(perceptual_module=features, perceptual_weight=0.1)

    The first time a group is used on a machine, escnn computes and caches (on disk, in its
    package folder) the Clebsch-Gordan coefficients it needs: about 20 s for D8 and a few
    minutes for D16 on 2 cores; later builds take about a second.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro import EquivariantAutoencoder
    >>> X = np.random.default_rng(0).random((16, 1, 16, 16), dtype=np.float32)
    >>> ae = EquivariantAutoencoder(n_components=4, group="C4", widths=(8,), max_epochs=1,
    ...                             random_state=0).fit(X)
    >>> Z = ae.transform(X)
    >>> Z.shape
    (16, 4)
    >>> Z_rotated = ae.transform(np.rot90(X, 1, axes=(2, 3)).copy())
    >>> bool(np.allclose(Z, Z_rotated, atol=1e-4))
    True
    >>> ae.reconstruct(X).shape
    (16, 1, 16, 16)
    """

    # escnn computes its filter bases from real numbers: the size check estimates this
    # network from its widths instead of building it on torch's meta device
    _builds_on_meta = False
    _default_batch_size = 32

    _parameter_constraints = {
        **DeepEstimator._parameter_constraints,
        "group": [StrOptions(set(GROUPS))],
        "widths": [tuple, list],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "mse_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "ssim_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "ms_ssim_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "perceptual_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "perceptual_module": [torch.nn.Module, None],
        "variance_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "covariance_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "invariance_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "max_rotation": [Interval(numbers.Real, 0, 180, closed="both")],
        "scale_range": [tuple, list, None],
        "max_shear": [Interval(numbers.Real, 0, 90, closed="left")],
        "perspective": [Interval(numbers.Real, 0, 1, closed="both")],
        "blur_sigma": [tuple, list, None],
    }

    def __init__(
        self,
        n_components=16,
        *,
        group="D8",
        widths=(32, 64, 128),
        kernel_size=5,
        mse_weight=1.0,
        ssim_weight=0.0,
        ms_ssim_weight=0.0,
        perceptual_weight=0.0,
        perceptual_module=None,
        variance_weight=1.0,
        covariance_weight=0.04,
        invariance_weight=0.0,
        max_rotation=180.0,
        scale_range=(0.9, 1.1),
        max_shear=10.0,
        perspective=0.0,
        blur_sigma=(0.1, 1.0),
        max_epochs=20,
        batch_size="auto",
        lr=2e-3,
        weight_decay=0.0,
        augment=True,
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
        self.group = group
        self.widths = widths
        self.kernel_size = kernel_size
        self.mse_weight = mse_weight
        self.ssim_weight = ssim_weight
        self.ms_ssim_weight = ms_ssim_weight
        self.perceptual_weight = perceptual_weight
        self.perceptual_module = perceptual_module
        self.variance_weight = variance_weight
        self.covariance_weight = covariance_weight
        self.invariance_weight = invariance_weight
        self.max_rotation = max_rotation
        self.scale_range = scale_range
        self.max_shear = max_shear
        self.perspective = perspective
        self.blur_sigma = blur_sigma
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

    @property
    def _drop_last(self):
        # a batch of one image has no variance or covariance
        return bool(self.variance_weight or self.covariance_weight)

    # ------------------------------------------------------------------ validation
    def _check_params(self, data):
        super()._check_params(data)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (a centred kernel), got {self.kernel_size}")
        for name in ("scale_range", "blur_sigma"):
            value = getattr(self, name)
            if value is not None and (len(value) != 2 or not 0 <= value[0] <= value[1]):
                raise ValueError(
                    f"{name} must be a (low, high) pair with 0 <= low <= high: {value}"
                )
        if self.scale_range is not None and self.scale_range[0] <= 0:
            raise ValueError(f"scale_range must hold positive factors: {self.scale_range}")
        if self.perceptual_weight and self.perceptual_module is None:
            raise ValueError(
                "perceptual_weight > 0 needs a perceptual_module: a frozen torch module that maps "
                "images to features, e.g. the first blocks of a locally saved ResNet-18"
            )
        if self.ms_ssim_weight and min(data.image_shape[1:]) < _MS_SSIM_MIN_SIZE:
            raise ValueError(
                f"ms_ssim_weight > 0 needs images of at least {_MS_SSIM_MIN_SIZE} px, got "
                f"{data.image_shape[1:]}; use ssim_weight instead"
            )

    # ------------------------------------------------------------------ hooks
    def _build_module(self, image_shape):
        # escnn is imported here, not with the class: it is installed in a separate step
        # (skastro._escnn), and the class must stay importable, clonable and loadable by name
        # without it; a missing escnn is then an ImportError that gives the install command.
        from skastro.nn.equivariant import EquivariantAutoencoderModule

        return EquivariantAutoencoderModule(
            image_shape,
            group=self.group,
            widths=tuple(self.widths),
            n_components=self.n_components,
            kernel_size=self.kernel_size,
        )

    def _on_net_initialized(self, net, data):
        from skastro.augment import affine_augmentation

        # built once per fit: kornia's pipelines and the copied perceptual network
        self._augmentation = affine_augmentation(
            data.image_shape[1:],
            max_rotation=self.max_rotation,
            scale_range=self.scale_range,
            max_shear=self.max_shear,
            perspective=self.perspective,
            blur_sigma=self.blur_sigma,
        )
        self._perceptual = None
        if self.perceptual_weight:
            self._perceptual = PerceptualLoss(self.perceptual_module).to(self.device_)

    def _augment(self, X):
        return self._augmentation(X)

    def _training_terms(self, module, X, training, index=None):
        # Two views when training with augmentation: the loss is computed on the augmented
        # view, and the invariance term compares its latent with the original image's.
        X = self._to_net(X)
        if not (training and self.augment):
            return self._compute_loss(module, X, training)
        view = self._augment(X)
        terms, latent = self._terms_and_latent(module, view)
        if self.invariance_weight:
            # the original image's latent is the target (no gradient through it): one more
            # encoder pass, forward only
            with torch.no_grad():
                target = module.encode(X)
            invariance = invariance_loss(latent, target)
            terms["loss_invariance"] = invariance
            terms["loss"] = terms["loss"] + self.invariance_weight * invariance
        return terms

    def _compute_loss(self, module, X, training):
        return self._terms_and_latent(module, X)[0]

    def _terms_and_latent(self, module, X):
        reconstruction, latent = module(X)
        terms = {"mse": mse_loss(reconstruction, X)}
        if self.ssim_weight:
            terms["ssim"] = ssim_loss(reconstruction, X)
        if self.ms_ssim_weight:
            span = data_range_of(X)
            terms["ms_ssim"] = 1.0 - ms_ssim(reconstruction, X, data_range=span).mean()
        if self.perceptual_weight:
            terms["perceptual"] = self._perceptual(reconstruction, X)
        # a batch of one image has no spread (only when the data hold a single image: batches
        # are full otherwise); the latent terms are then 0
        spread = len(latent) > 1
        if self.variance_weight:
            terms["variance"] = variance_loss(latent) if spread else latent.sum() * 0.0
        if self.covariance_weight:
            terms["covariance"] = covariance_loss(latent) if spread else latent.sum() * 0.0
        weights = {
            "mse": self.mse_weight,
            "ssim": self.ssim_weight,
            "ms_ssim": self.ms_ssim_weight,
            "perceptual": self.perceptual_weight,
            "variance": self.variance_weight,
            "covariance": self.covariance_weight,
        }
        return weighted_sum(terms, weights), latent

    def _encode(self, module, X):
        return module.encode(X)

    def _decode_batch(self, module, X):
        return module(X)[0]

    # ------------------------------------------------------------------ export
    def export(self):
        """The trained network as plain torch modules (no escnn needed to run it).

        The returned module takes *standardised* images, ``(X - channel_mean_) / channel_std_``
        with shape ``(b, C, H, W)``, and returns ``(reconstruction, latent)``; its
        ``encode`` method returns the latent only. :meth:`transform` and :meth:`reconstruct`
        already use it.

        Returns
        -------
        skastro.nn.equivariant.ExportedAutoencoder
        """
        check_is_fitted(self)
        return self.module_.export()
