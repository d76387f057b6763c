"""Variational autoencoder networks: a plain conv VAE and the conditional-VAE-like classifier.

:class:`ConvVAEModule`
    Convolutional VAE with a Gaussian posterior on every latent unit (the write-up's baseline).
:class:`CondVAEModule`
    Residual autoencoder whose latent is one stochastic *class unit* (posterior mean and
    log-variance; a bimodal prior acts on it) plus deterministic *free units* with no prior
    term, which carry whatever else the reconstruction needs (Sun et al. 2017, "Conditional
    VAE": "one hidden unit is constrained by the KL-term and is used as a classifier while
    other units without KL-term contribute to better reproduction").
:class:`CodeCondVAEModule`
    The same latent on top of a frozen, pre-trained image encoder: the write-up's
    hierarchical "AE + VAE" design, where an autoencoder extracts low-level features and a
    small VAE on those features does the classification.

``forward`` of the two conditional modules returns a dict with ``"reconstruction"``,
``"target"`` (what the reconstruction is compared with), ``"mu"`` and ``"logvar"`` of the class
unit, ``"class_code"`` (the sample in training mode, the mean otherwise) and ``"free"``.
"""

import torch
from torch import nn

from skastro.nn.conv import ConvDecoder, ConvEncoder
from skastro.nn.residual import ResidualDecoder, ResidualEncoder

__all__ = ["CodeCondVAEModule", "CondVAEModule", "ConvVAEModule", "reparameterize"]

# Log-variances are kept in a range where exp() neither underflows to 0 nor overflows.
_LOGVAR_MIN, _LOGVAR_MAX = -12.0, 8.0


def _clamp_logvar(logvar):
    return torch.clamp(logvar, _LOGVAR_MIN, _LOGVAR_MAX)


def reparameterize(mu, logvar, sample):
    """``mu + exp(logvar / 2) * eps`` when ``sample``, else ``mu`` (the posterior mean).

    Examples
    --------
    >>> mu = torch.zeros(3)
    >>> bool(torch.equal(reparameterize(mu, torch.zeros(3), sample=False), mu))
    True
    """
    if not sample:
        return mu
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


class ConvVAEModule(nn.Module):
    """Conv encoder to ``(mu, logvar)`` of ``n_components`` Gaussian units, conv decoder back.

    Samples the latent in training mode and decodes the posterior mean in eval mode.
    ``forward`` returns ``(reconstruction, mu, logvar)``.

    Examples
    --------
    >>> vae = ConvVAEModule((1, 16, 16), (4, 8), 2).eval()
    >>> rec, mu, logvar = vae(torch.zeros(3, 1, 16, 16))
    >>> rec.shape, mu.shape
    (torch.Size([3, 1, 16, 16]), torch.Size([3, 2]))
    """

    def __init__(self, image_shape, widths=(16, 32, 64), n_components=8):
        super().__init__()
        self.n_components = n_components
        self.encoder = ConvEncoder(image_shape, widths, 2 * n_components)
        self.decoder = ConvDecoder(image_shape, widths, n_components)

    def encode(self, X):
        """Posterior ``(mu, logvar)``."""
        out = self.encoder(X)
        return out[:, : self.n_components], _clamp_logvar(out[:, self.n_components :])

    def forward(self, X):
        mu, logvar = self.encode(X)
        Z = reparameterize(mu, logvar, self.training)
        return self.decoder(Z), mu, logvar


class _ClassLatent(nn.Module):
    """Split an encoder output into class unit ``(mu, logvar)`` and free units, decode them."""

    def _split(self, out):
        mu, logvar, free = out[:, 0], _clamp_logvar(out[:, 1]), out[:, 2:]
        return mu, logvar, free

    def _latent(self, out):
        mu, logvar, free = self._split(out)
        code = reparameterize(mu, logvar, self.training)
        return {"mu": mu, "logvar": logvar, "class_code": code, "free": free}

    def _decoder_input(self, latent):
        return torch.cat([latent["class_code"][:, None], latent["free"]], dim=1)


class CondVAEModule(_ClassLatent):
    """Residual autoencoder with one stochastic class unit and ``n_free`` free units.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)``.
    widths : sequence of int
        Channels of the residual levels.
    n_free : int
        Number of free (deterministic, prior-free) latent units.

    Examples
    --------
    >>> net = CondVAEModule((1, 16, 16), (4, 8), 2).eval()
    >>> out = net(torch.zeros(3, 1, 16, 16))
    >>> out["reconstruction"].shape, out["mu"].shape, out["free"].shape
    (torch.Size([3, 1, 16, 16]), torch.Size([3]), torch.Size([3, 2]))
    """

    def __init__(self, image_shape, widths=(8, 16, 32), n_free=4):
        super().__init__()
        self.encoder = ResidualEncoder(image_shape, widths, 2 + n_free)
        self.decoder = ResidualDecoder(image_shape, widths, 1 + n_free)

    def encode(self, X):
        """Class-unit ``mu``, ``logvar`` and the free units (no sampling)."""
        return self._split(self.encoder(X))

    def forward(self, X):
        latent = self._latent(self.encoder(X))
        latent["reconstruction"] = self.decoder(self._decoder_input(latent))
        latent["target"] = X
        return latent


class CodeCondVAEModule(_ClassLatent):
    """Class unit + free units on the standardised codes of a frozen image encoder.

    The frozen encoder is a copy of a fitted autoencoder's encoder; its inputs are mapped from
    this estimator's standardisation to the one it was trained with (``input_scale``,
    ``input_shift``) and its codes are standardised (``code_mean``, ``code_std``) before the
    small MLP VAE sees them. Only the MLP is trained; it reconstructs the codes.

    Parameters
    ----------
    extractor : torch.nn.Module
        Maps ``(b, C, H, W)`` images to ``(b, n_codes)`` codes; frozen here.
    n_channels : int
        ``C``, the number of image channels.
    n_codes : int
        Size of the extractor's codes.
    hidden : int
        Width of the MLP's hidden layers.
    n_free : int
        Number of free latent units.

    Examples
    --------
    >>> extractor = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 6))
    >>> net = CodeCondVAEModule(extractor, 1, 6, 8, 2).eval()
    >>> out = net(torch.zeros(3, 1, 4, 4))
    >>> out["reconstruction"].shape, out["target"].shape
    (torch.Size([3, 6]), torch.Size([3, 6]))
    """

    def __init__(self, extractor, n_channels, n_codes, hidden=64, n_free=4):
        super().__init__()
        self.extractor = extractor
        for param in self.extractor.parameters():
            param.requires_grad_(False)
        self.register_buffer("input_scale", torch.ones(n_channels))
        self.register_buffer("input_shift", torch.zeros(n_channels))
        self.register_buffer("code_mean", torch.zeros(n_codes))
        self.register_buffer("code_std", torch.ones(n_codes))
        act = nn.LeakyReLU(0.1)
        self.encoder = nn.Sequential(
            nn.Linear(n_codes, hidden),
            act,
            nn.Linear(hidden, hidden),
            act,
            nn.Linear(hidden, 2 + n_free),
        )
        self.decoder = nn.Sequential(
            nn.Linear(1 + n_free, hidden),
            act,
            nn.Linear(hidden, hidden),
            act,
            nn.Linear(hidden, n_codes),
        )

    def train(self, mode=True):
        super().train(mode)
        self.extractor.eval()  # frozen: never switch it to training behaviour
        return self

    def raw_codes(self, X):
        """The extractor's codes of standardised images ``X`` (before code standardisation)."""
        with torch.no_grad():
            return self.extractor(
                X * self.input_scale.view(1, -1, 1, 1) + self.input_shift.view(1, -1, 1, 1)
            )

    def codes(self, X):
        """Standardised extractor codes: what the MLP VAE encodes and reconstructs."""
        return (self.raw_codes(X) - self.code_mean) / self.code_std

    def encode(self, X):
        """Class-unit ``mu``, ``logvar`` and the free units (no sampling)."""
        return self._split(self.encoder(self.codes(X)))

    def forward(self, X):
        codes = self.codes(X)
        latent = self._latent(self.encoder(codes))
        latent["reconstruction"] = self.decoder(self._decoder_input(latent))
        latent["target"] = codes
        return latent
