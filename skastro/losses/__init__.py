"""Loss terms, one family per module, each written once (torch only, no scikit-learn).

Every function takes tensors and returns a scalar tensor to *minimise*. Estimators weight them
with ``<term>_weight`` parameters and combine them with :func:`weighted_sum`, which also logs
each term separately in ``history_``.

=====================  ===========================================================
module                 loss family
=====================  ===========================================================
``_reconstruction``    mean squared error
``_ssim``              SSIM per pixel, ``1 - SSIM``, MS-SSIM (the one SSIM in skastro)
``_denoising``         masked foreground SSIM, background total variation, darkening
``_contrastive``       NT-Xent (SimCLR)
``_vicreg``            VICReg's invariance, variance and covariance terms; RankMe
``_vae``               Gaussian and bimodal priors, Wasserstein distance
``_perceptual``        feature distance under a frozen network
``_terms``             the weighted sum of named terms
=====================  ===========================================================
"""

from skastro.losses._contrastive import nt_xent_loss
from skastro.losses._denoising import background_tv_loss, darkening_loss, foreground_ssim_loss
from skastro.losses._perceptual import PerceptualLoss
from skastro.losses._reconstruction import mse_loss
from skastro.losses._ssim import data_range_of, ms_ssim, ms_ssim_settings, ssim_loss, ssim_map
from skastro.losses._terms import weighted_sum
from skastro.losses._vae import (
    bimodal_kl_mc,
    bimodal_log_odds,
    bimodal_log_prob,
    bimodal_responsibility,
    gaussian_kl_standard,
    sample_bimodal,
    wasserstein_1d,
)
from skastro.losses._vicreg import (
    VICRegLoss,
    covariance_loss,
    invariance_loss,
    rankme,
    variance_loss,
)

__all__ = [
    "PerceptualLoss",
    "VICRegLoss",
    "background_tv_loss",
    "bimodal_kl_mc",
    "bimodal_log_odds",
    "bimodal_log_prob",
    "bimodal_responsibility",
    "covariance_loss",
    "darkening_loss",
    "data_range_of",
    "foreground_ssim_loss",
    "gaussian_kl_standard",
    "invariance_loss",
    "ms_ssim",
    "ms_ssim_settings",
    "mse_loss",
    "nt_xent_loss",
    "rankme",
    "sample_bimodal",
    "ssim_loss",
    "ssim_map",
    "variance_loss",
    "wasserstein_1d",
    "weighted_sum",
]
