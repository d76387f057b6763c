"""Rotation- and flip-equivariant encoder/decoder blocks built on escnn, and their export.

The encoder maps an image (a field of scalars) to feature fields that transform with the
*regular representation* of a planar symmetry group (the rotations C_N, or the rotations and
reflections D_N); the decoder mirrors it back to scalar fields. Pooling over the group
(``GroupPooling``) and then over space gives features that do not change when the image is
rotated or flipped.

Exact invariance under 90-degree rotations and flips needs every spatial operation to keep the
image centre where it is. That holds for stride-1 convolutions with symmetric padding, and for
the downsampling used here (:class:`BlurPool`): a binomial blur sampled at positions that are
symmetric about the centre, whatever the parity of the size. Upsampling is bilinear to the
exact sizes the encoder saw, which is symmetric too.

escnn builds the steerable filter bases when a module is constructed, which is slow (seconds;
much longer the very first time, while escnn fills its on-disk cache). :func:`build_blocks`
therefore builds each configuration once per process and hands out deep copies. escnn's
modules cannot be pickled (its groups hold local functions), so
:class:`EquivariantAutoencoderModule` pickles its configuration and learnable tensors only and
rebuilds the escnn modules on unpickling. For inference it uses :meth:`escnn.nn.SequentialModule.
export`, plain torch modules (:class:`ExportedAutoencoder`) that compute the same outputs faster.

Torch and escnn only: no scikit-learn here.
"""

import collections
import copy
import math
import threading

import torch
import torch.nn.functional as F
from torch import nn

from skastro._escnn import escnn_nn, gspaces

__all__ = [
    "BlurPool",
    "EquivariantAutoencoderModule",
    "ExportedAutoencoder",
    "build_blocks",
    "export_conv",
    "export_sequential",
    "make_gspace",
]

_TEMPLATE_CACHE_SIZE = 8
_templates = collections.OrderedDict()
_templates_lock = threading.Lock()


def make_gspace(group):
    """The escnn space of a group name: ``"trivial"``, ``"C<N>"`` (rotations) or ``"D<N>"``.

    Parameters
    ----------
    group : str
        ``"trivial"``, ``"C<N>"`` or ``"D<N>"`` with ``N >= 1``.

    Returns
    -------
    gspace : escnn.gspaces.GSpace2D

    Examples
    --------
    >>> make_gspace("D8").fibergroup.order()
    16
    """
    if group == "trivial":
        return gspaces.trivialOnR2()
    kind, order = group[:1], group[1:]
    if kind not in ("C", "D") or not order.isdigit() or int(order) < 1:
        raise ValueError(f"group must be 'trivial', 'C<N>' or 'D<N>' (e.g. 'D8'), got {group!r}")
    if kind == "D":
        return gspaces.flipRot2dOnR2(int(order))
    return gspaces.rot2dOnR2(int(order))


def downsampled_size(size):
    """Size after :class:`BlurPool`: ``size / 2`` for even sizes, ``(size + 1) / 2`` for odd."""
    return (size + 1) // 2


def _blur_taps(size):
    # Even sizes: 4 binomial taps, windows start at -1, 1, 3, ... (symmetric about the centre,
    # which lies between two pixels). Odd sizes: 3 taps centred on pixels 0, 2, ..., size - 1.
    taps = [1.0, 3.0, 3.0, 1.0] if size % 2 == 0 else [1.0, 2.0, 1.0]
    total = sum(taps)
    return [t / total for t in taps]


def _blur_kernel(height, width):
    kernel = torch.outer(torch.tensor(_blur_taps(height)), torch.tensor(_blur_taps(width)))
    return kernel[None, None]


class BlurDownsample(nn.Module):
    """Plain-torch antialiased 2x downsampling that keeps the image centre (see BlurPool).

    Parameters
    ----------
    input_size : (int, int)
        ``(H, W)`` of the input.

    Examples
    --------
    >>> BlurDownsample((8, 7))(torch.ones(1, 2, 8, 7)).shape
    torch.Size([1, 2, 4, 4])
    """

    def __init__(self, input_size):
        super().__init__()
        self.input_size = tuple(int(s) for s in input_size)
        self.register_buffer("kernel", _blur_kernel(*self.input_size), persistent=False)

    def forward(self, X):
        channels = X.shape[1]
        kernel = self.kernel.to(X.dtype).expand(channels, 1, -1, -1)
        return F.conv2d(X, kernel, stride=2, padding=1, groups=channels)


class BlurPool(escnn_nn.EquivariantModule):
    """Equivariant antialiased 2x downsampling (blur + stride 2) for any field type.

    The same depthwise binomial filter is applied to every channel, so it commutes with any
    representation acting on the channels; the filter is symmetric under 90-degree rotations
    and flips, and the sampling positions are symmetric about the image centre, so exact
    rotations by 90 degrees and flips commute with it (the blur also makes it nearly
    equivariant to other angles). Output size: ``ceil(H / 2), ceil(W / 2)``.

    Parameters
    ----------
    in_type : escnn.nn.FieldType
        Input field type (also the output type).
    input_size : (int, int)
        ``(H, W)`` of the input.

    Examples
    --------
    >>> gspace = make_gspace("C4")
    >>> field = escnn_nn.FieldType(gspace, [gspace.regular_repr])
    >>> x = escnn_nn.GeometricTensor(torch.randn(1, 4, 6, 6), field)
    >>> BlurPool(field, (6, 6))(x).shape
    torch.Size([1, 4, 3, 3])
    """

    def __init__(self, in_type, input_size):
        super().__init__()
        self.in_type = in_type
        self.out_type = in_type
        self.space = in_type.gspace
        self.input_size = tuple(int(s) for s in input_size)
        self.register_buffer("kernel", _blur_kernel(*self.input_size), persistent=False)

    def forward(self, input):
        assert input.type == self.in_type
        channels = input.tensor.shape[1]
        kernel = self.kernel.to(input.tensor.dtype).expand(channels, 1, -1, -1)
        out = F.conv2d(input.tensor, kernel, stride=2, padding=1, groups=channels)
        return escnn_nn.GeometricTensor(out, self.out_type)

    def evaluate_output_shape(self, input_shape):
        b, c, h, w = input_shape
        return (b, c, downsampled_size(h), downsampled_size(w))

    def export(self):
        self.eval()
        # on this module's device and dtype: the twin is built lazily, after the module moved
        down = BlurDownsample(self.input_size)
        return down.to(device=self.kernel.device, dtype=self.kernel.dtype).eval()


def level_sizes(height, width, n_levels):
    """Spatial sizes at each encoder level: ``[(H, W), (ceil(H/2), ceil(W/2)), ...]``."""
    sizes = [(int(height), int(width))]
    for _ in range(n_levels):
        h, w = sizes[-1]
        sizes.append((downsampled_size(h), downsampled_size(w)))
    return sizes


def _n_fields(channels, order):
    return max(1, math.ceil(int(channels) / order))


def _new_convolutions(channels, group, widths, n_components, kernel_size):
    # Everything whose construction is slow (the steerable bases) and independent of the
    # image size: the field types and the convolutions.
    gspace = make_gspace(group)
    order = gspace.fibergroup.order()
    scalar = escnn_nn.FieldType(gspace, [gspace.trivial_repr] * channels)
    types = [
        escnn_nn.FieldType(gspace, [gspace.regular_repr] * _n_fields(w, order)) for w in widths
    ]
    latent_type = escnn_nn.FieldType(gspace, [gspace.regular_repr] * n_components)
    # kernel_size for the two convolutions that touch the image's own channels (the first of
    # the encoder, the last of the decoder): the pixel grid limits how well small filters can
    # turn by 45 degrees, and with few channels large kernels are cheap; 3x3 on the
    # many-channel inner levels, which hold most of the compute
    encoder_kernels = [kernel_size] + [3] * len(types)
    decoder_kernels = [3] * len(types) + [kernel_size]
    ins = [scalar, *types]
    outs = [*types, latent_type]
    encoder = [
        escnn_nn.R2Conv(i, o, k, padding=k // 2) for i, o, k in zip(ins, outs, encoder_kernels)
    ]
    decoder = [
        escnn_nn.R2Conv(o, i, k, padding=k // 2)
        for i, o, k in zip(ins[::-1], outs[::-1], decoder_kernels)
    ]
    return {
        "input_type": scalar,
        "encoder": nn.ModuleList(encoder),
        "decoder": nn.ModuleList(decoder),
        "group_pool": escnn_nn.GroupPooling(latent_type),
    }


def _assemble(convolutions, height, width):
    # Encoder: per level BlurPool, then a convolution at the halved resolution and ELU; then
    # the bottleneck convolution. Downsampling *before* convolving, as ConvAutoencoder's
    # stride-2 levels do, keeps the convolutions and nonlinearities off the full-resolution
    # grid, where they cost 4x as much: measured on make_disks 64 px (widths (32, 64, 128)),
    # the exported encoder went from about 0.35x to about 1x ConvAutoencoder's speed, and the
    # single model's test MS-SSIM from 0.930 to 0.958 and its 45-degree latent error from
    # 0.085 to 0.055 (the input is antialiased before any filter sees it). Decoder: from the
    # bottleneck, ELU, upsampling to the exact level sizes and a convolution per level, so its
    # last convolution works at full resolution.
    # ELU rather than ReLU: the first level has only a few regular fields, and with ReLU
    # they could all die at some initialisations (measured on make_disks 32 px, 5 epochs:
    # 2 of 6 seeds stalled at a training MSE of 0.2-0.85; with ELU all 6 reach 0.056-0.086).
    encoder_convs, decoder_convs = list(convolutions["encoder"]), list(convolutions["decoder"])
    n_levels = len(encoder_convs) - 1
    sizes = level_sizes(height, width, n_levels)
    encoder = []
    for level, conv in enumerate(encoder_convs[:-1]):
        encoder.append(BlurPool(conv.in_type, sizes[level]))
        encoder += [conv, escnn_nn.ELU(conv.out_type, inplace=True)]
    encoder.append(encoder_convs[-1])
    decoder = [decoder_convs[0]]
    for level, conv in zip(range(n_levels - 1, -1, -1), decoder_convs[1:]):
        decoder += [
            escnn_nn.ELU(conv.in_type, inplace=True),
            escnn_nn.R2Upsampling(conv.in_type, size=sizes[level], mode="bilinear"),
            conv,
        ]
    return {
        "input_type": convolutions["input_type"],
        "encoder": escnn_nn.SequentialModule(*encoder),
        "decoder": escnn_nn.SequentialModule(*decoder),
        "group_pool": convolutions["group_pool"],
    }


def _shared_types_memo(blocks):
    # Field types and spaces are immutable descriptions: copies share them, so that escnn's
    # type checks between consecutive modules keep comparing the same objects.
    memo = {}
    for value in blocks.values():
        modules = value.modules() if isinstance(value, nn.Module) else []
        for module in modules:
            for name in ("in_type", "out_type", "space"):
                shared = getattr(module, name, None)
                if shared is not None:
                    memo[id(shared)] = shared
            # the sampled bases are constant: copies may share them
            for name, buffer in module.named_buffers(recurse=False):
                if name in ("sampled_basis", "bias_expansion"):
                    memo[id(buffer)] = buffer
    memo[id(blocks["input_type"])] = blocks["input_type"]
    return memo


def build_blocks(image_shape, group="D8", widths=(16, 32, 64), n_components=16, kernel_size=5):
    """Equivariant encoder, decoder and group pooling for one configuration.

    The convolutions of each ``(C, group, widths, n_components, kernel_size)`` are built once
    per process (escnn's basis construction is slow) and deep copies are returned, all with
    the same initial weights; re-initialise them with :func:`reset_parameters`.

    Parameters
    ----------
    image_shape : (int, int, int)
        ``(C, H, W)``.
    group : str
        ``"trivial"``, ``"C4"``, ``"C8"``, ``"D4"``, ``"D8"``, ``"D16"`` (or other C_N / D_N).
    widths : sequence of int
        Channels at each encoder level; each level holds ``ceil(width / |G|)`` regular fields
        (``|G|`` is the group order, 1 for ``"trivial"``).
    n_components : int
        Regular fields at the bottleneck, hence size of the invariant latent.
    kernel_size : int
        Odd kernel size of the convolutions on the image's own channels (the first of the
        encoder, which sees the input downsampled once, and the last of the decoder, at full
        resolution); the others are 3x3.

    Returns
    -------
    blocks : dict
        ``input_type`` (escnn FieldType), ``encoder`` and ``decoder``
        (escnn SequentialModule), ``group_pool`` (escnn GroupPooling).

    Examples
    --------
    >>> blocks = build_blocks((1, 8, 8), "C4", widths=(4,), n_components=2, kernel_size=3)
    >>> blocks["encoder"].out_type.size
    8
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")
    if len(widths) == 0:
        raise ValueError("widths must hold at least one level")
    channels, height, width = (int(s) for s in image_shape)
    key = (channels, str(group), tuple(int(w) for w in widths), int(n_components), int(kernel_size))
    with _templates_lock:
        template = _templates.get(key)
        if template is None:
            # A private RNG stream: building must not consume the caller's random numbers,
            # so results do not depend on whether the configuration was cached.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                template = _new_convolutions(*key)
            for value in template.values():
                if isinstance(value, nn.Module):
                    value.train()
                    for conv in value.modules():
                        if isinstance(conv, escnn_nn.R2Conv):
                            # escnn's own cache is keyed by module identity, so copies miss
                            # it; its variance computation costs more than the copy itself
                            conv.skastro_init_scale = _he_init_scale(conv.basisexpansion)
            _templates[key] = template
        _templates.move_to_end(key)
        while len(_templates) > _TEMPLATE_CACHE_SIZE:
            _templates.popitem(last=False)
        convolutions = copy.deepcopy(template, _shared_types_memo(template))
    return _assemble(convolutions, height, width)


def _he_init_scale(basisexpansion):
    # escnn's generalised He initialisation: one scale per steerable coefficient
    from escnn.nn.init import _generalized_he_init_variances

    return _generalized_he_init_variances(basisexpansion)


def reset_parameters(module):
    """Draw fresh weights for every escnn convolution in ``module`` (He init, zero bias).

    This is escnn's generalised He initialisation (:func:`escnn.nn.init.generalized_he_init`)
    with the per-coefficient scales computed once per configuration. It draws from torch's
    default random generator, so it is reproducible under a seed.
    """
    for sub in module.modules():
        if isinstance(sub, escnn_nn.R2Conv):
            scale = getattr(sub, "skastro_init_scale", None)
            if scale is None:
                scale = sub.skastro_init_scale = _he_init_scale(sub.basisexpansion)
            with torch.no_grad():
                sub.weights.copy_(scale.to(sub.weights.device) * torch.randn_like(sub.weights))
                if sub.bias is not None:
                    sub.bias.zero_()


def export_conv(conv):
    """A plain :class:`torch.nn.Conv2d` computing what the escnn ``R2Conv`` ``conv`` does.

    Unlike escnn's ``R2Conv.export``, the convolution is built directly on the device and in
    the dtype of ``conv``'s expanded filter (escnn builds it on the CPU and then swaps in the
    filter's storage, which fails on the "meta" device) and without drawing initial weights
    (which would advance the caller's random number generator). The weights share the
    expanded filter's storage.
    """
    conv.eval()  # expands the filter and bias from the current steerable weights
    weight = conv.filter
    bias = conv.expanded_bias if conv.bias is not None else None
    plain = torch.nn.utils.skip_init(
        nn.Conv2d,
        conv.in_type.size,
        conv.out_type.size,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=bias is not None,
        padding_mode=conv.padding_mode,
        device=weight.device,
        dtype=weight.dtype,
    )
    plain.weight.data = weight.data
    if bias is not None:
        plain.bias.data = bias.data
    return plain


def export_sequential(sequence):
    """Plain-torch twin of an escnn ``SequentialModule``, on the device and dtype of its tensors.

    escnn's own ``SequentialModule.export`` builds some parts on the CPU whatever the device of
    the module (``R2Conv``), so an exported copy made after the module moved to a GPU would mix
    devices; here every part that holds tensors is built where those tensors are.
    """
    sequence.eval()
    parts = collections.OrderedDict()
    for name, module in sequence._modules.items():
        if isinstance(module, escnn_nn.R2Conv):
            parts[name] = export_conv(module)
        elif isinstance(module, escnn_nn.SequentialModule):
            parts[name] = export_sequential(module)
        elif isinstance(module, escnn_nn.EquivariantModule):
            # parameter-free parts (ELU, upsampling) and BlurPool, which exports on its device
            parts[name] = module.export()
        else:
            parts[name] = module
    return nn.Sequential(parts)


class ExportedAutoencoder(nn.Module):
    """Plain-torch twin of :class:`EquivariantAutoencoderModule`, for fast inference.

    Built by :meth:`EquivariantAutoencoderModule.export`; ``forward`` returns
    ``(reconstruction, latent)`` like the equivariant module. It pickles like any torch module.
    """

    def __init__(self, encoder, decoder, group_pool):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.group_pool = group_pool

    def encode(self, X):
        """Invariant latent ``(b, n_components)``: group pooling, then global average pooling."""
        return self.group_pool(self.encoder(X)).mean(dim=(2, 3))

    def forward(self, X):
        features = self.encoder(X)
        latent = self.group_pool(features).mean(dim=(2, 3))
        return self.decoder(features), latent


class EquivariantAutoencoderModule(nn.Module):
    """Equivariant autoencoder: escnn encoder, mirrored decoder, invariant latent.

    ``forward(X)`` returns ``(reconstruction, latent)``. The decoder reconstructs from the
    encoder's equivariant bottleneck fields; the latent is their group pooling followed by a
    global average over space, hence invariant to the group (exactly to 90-degree rotations and,
    for dihedral groups, flips).

    In training mode the escnn modules run (their filters are expanded from the learnable
    steerable coefficients at each call, so gradients flow). In eval mode the module runs its
    exported plain-torch twin (see :meth:`export`), rebuilt whenever the weights may have
    changed. Pickling keeps the configuration and parameters; unpickling rebuilds the escnn
    modules (fast when the configuration was built before in the process).

    Parameters
    ----------
    image_shape : (int, int, int)
        ``(C, H, W)``.
    group : str, default="D8"
    widths : tuple of int, default=(16, 32, 64)
        Channels per encoder level (see :func:`build_blocks`).
    n_components : int, default=16
    kernel_size : int, default=5
    initialize : bool, default=True
        Draw fresh weights from torch's random generator.

    Examples
    --------
    >>> module = EquivariantAutoencoderModule((1, 8, 8), group="C4", widths=(4,), n_components=2)
    >>> reconstruction, latent = module(torch.randn(3, 1, 8, 8))
    >>> reconstruction.shape, latent.shape
    (torch.Size([3, 1, 8, 8]), torch.Size([3, 2]))
    """

    def __init__(
        self,
        image_shape,
        group="D8",
        widths=(16, 32, 64),
        n_components=16,
        kernel_size=5,
        initialize=True,
    ):
        super().__init__()
        self.config = {
            "image_shape": tuple(int(s) for s in image_shape),
            "group": str(group),
            "widths": tuple(int(w) for w in widths),
            "n_components": int(n_components),
            "kernel_size": int(kernel_size),
        }
        blocks = build_blocks(**self.config)
        self.input_type = blocks["input_type"]
        self.encoder = blocks["encoder"]
        self.decoder = blocks["decoder"]
        self.group_pool = blocks["group_pool"]
        if initialize:
            reset_parameters(self)
        self._exported = None

    # ------------------------------------------------------------------ equivariant path
    def equivariant_forward(self, X):
        """``(reconstruction, latent)`` through the escnn modules (whatever the mode)."""
        features = self.encoder(escnn_nn.GeometricTensor(X, self.input_type))
        latent = self.group_pool(features).tensor.mean(dim=(2, 3))
        return self.decoder(features).tensor, latent

    def equivariant_encode(self, X):
        """The invariant latent through the escnn modules (whatever the mode)."""
        features = self.encoder(escnn_nn.GeometricTensor(X, self.input_type))
        return self.group_pool(features).tensor.mean(dim=(2, 3))

    # ------------------------------------------------------------------ export
    def export(self):
        """The plain-torch twin of this module, in eval mode, with gradients off.

        Returns
        -------
        ExportedAutoencoder
        """
        was_training = self.training
        self.eval()
        with torch.no_grad():
            twin = ExportedAutoencoder(
                export_sequential(self.encoder),
                export_sequential(self.decoder),
                self.group_pool.export(),
            )
        twin.requires_grad_(False)
        twin.eval()
        self.train(was_training)
        return twin

    def _inference_twin(self):
        if self._exported is None:
            # stored outside the module tree: not a parameter holder, not in state_dict
            self.__dict__["_exported"] = self.export()
        return self._exported

    def encode(self, X):
        """Invariant latent ``(b, n_components)``; runs the exported twin in eval mode."""
        if self.training:
            return self.equivariant_encode(X)
        return self._inference_twin().encode(X)

    def forward(self, X):
        if self.training:
            return self.equivariant_forward(X)
        return self._inference_twin()(X)

    # ------------------------------------------------------------------ mode and state
    def train(self, mode=True):
        if mode:
            self.__dict__["_exported"] = None
            return super().train(True)
        # escnn expands and caches the filters when switching to eval; no graph is needed
        with torch.no_grad():
            return super().train(False)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.__dict__.get("_exported") is not None:
            self._exported._apply(fn, *args, **kwargs)
        return self

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """Learnable parameters only: escnn's buffers (sampled bases, expanded filters, index
        tables) are rebuilt from the configuration and the parameters."""
        state = super().state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)
        learnable = {prefix + name for name, _ in self.named_parameters()}
        for key in [k for k in state if k.startswith(prefix) and k not in learnable]:
            del state[key]
        return state

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Load parameters saved by :meth:`state_dict` (any escnn buffers are ignored)."""
        learnable = {name for name, _ in self.named_parameters()}
        state_dict = {k: v for k, v in state_dict.items() if k in learnable}
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if k in learnable]
        if strict and missing:
            raise RuntimeError(
                f"Error loading state_dict for {type(self).__name__}: missing parameters {missing}"
            )
        self._refresh()
        return result

    def _refresh(self):
        # re-expand escnn's cached eval-mode filters and drop the stale exported twin
        mode = self.training
        super().train(True)
        self.train(mode)
        self.__dict__["_exported"] = None

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        # escnn's groups hold local functions, which pickle cannot store: keep the
        # configuration and the Parameter objects themselves (an optimizer pickled alongside
        # keeps referring to them), and rebuild the escnn modules when unpickling.
        return {
            "config": self.config,
            "training": self.training,
            "parameters": dict(self.named_parameters()),
        }

    def __setstate__(self, state):
        self.__init__(**state["config"], initialize=False)
        device = None
        for name, parameter in state["parameters"].items():
            owner_name, _, leaf = name.rpartition(".")
            owner = self.get_submodule(owner_name)
            owner._parameters[leaf] = parameter
            device = parameter.device
        if device is not None:
            self.to(device)
        super().train(True)
        self.train(state["training"])
