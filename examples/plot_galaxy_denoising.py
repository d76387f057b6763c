"""
Denoising and clustering galaxies with a contrastive U-Net
==========================================================

:class:`~skastro.ContrastiveDenoiser` is the method of the Galaxy Zoo Hubble denoiser: a small
U-Net with skip connections learns to turn noisy galaxy images back into clean ones, while a
projection head on its bottleneck is trained with a contrastive loss (NT-Xent) so that two
noisy, rotated views of the same galaxy embed close together. The loss is split by a
foreground mask: the galaxy must keep its structure (SSIM), the sky must be smooth (total
variation) and dark.

We add detector noise (Poisson photon noise plus Gaussian read noise) to synthetic galaxies,
denoise them, compare with a classical filter, then cluster the learned representation with
HDBSCAN and look at the clusters with UMAP, t-SNE and example images.
"""

# %%
# Data and training
# -----------------
# Four morphological classes of synthetic galaxies, 32x32 pixels, noise-free: the model adds
# its own noise while training, from the noise model we give it (``noise_gain`` detected
# counts per unit flux, ``noise_sigma`` Gaussian noise in the images' units). The labels are
# only used at the end, to see what the clusters found.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from skimage.filters import gaussian
from sklearn.cluster import HDBSCAN
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import CosineAnnealingLR
from umap import UMAP

from skastro import ContrastiveDenoiser
from skastro.augment import add_noise
from skastro.datasets import make_galaxies
from skastro.metrics import ssim
from skastro.plotting import plot_cluster_examples, plot_embedding, plot_history, plot_image

# The model is kept small (three U-Net levels of 8, 16 and 32 channels, 12 epochs) so that
# this example runs in about three CPU-minutes; the default widths and more epochs denoise better
# (see the denoising benchmark).
GAIN, SIGMA = 50.0, 0.03
train = make_galaxies(400, image_size=32, random_state=0)
test = make_galaxies(300, image_size=32, random_state=1)
noisy = add_noise(test.images, GAIN, SIGMA, generator=0)

epochs = 12
model = ContrastiveDenoiser(
    widths=(8, 16, 32),
    noise_gain=GAIN,
    noise_sigma=SIGMA,
    max_epochs=epochs,
    callbacks=[LRScheduler(policy=CosineAnnealingLR, T_max=epochs)],
    random_state=0,
)
model.fit(train.images)

# %%
# Every loss term is logged per epoch (unweighted), so each can be followed on its own.
plot_history(model, log=True)

# %%
# Noisy, denoised and clean galaxies
# ----------------------------------
# :meth:`~skastro.ContrastiveDenoiser.denoise` returns images in the units and layout it was
# given. We compare the foreground SSIM (over the galaxy's pixels) with a Gaussian filter.
denoised = model.denoise(noisy)
smoothed = np.stack([gaussian(image, sigma=(0, 1.0, 1.0)) for image in noisy])
for name, images in [("noisy", noisy), ("Gaussian filter", smoothed), ("denoised", denoised)]:
    print(f"{name:>16}: foreground SSIM {ssim(test.images, images, mask=test.masks):.3f}")

n_shown = 6
fig, axes = plt.subplots(3, n_shown, figsize=(1.6 * n_shown, 5), layout="constrained")
for column in range(n_shown):
    for row, images in enumerate([noisy, denoised, test.images]):
        plot_image(images[column], ax=axes[row, column], stretch="asinh")
for row, name in enumerate(["noisy", "denoised", "clean"]):
    axes[row, 0].set_ylabel(name)

# %%
# Clusters in the learned representation
# --------------------------------------
# :meth:`~skastro.ContrastiveDenoiser.transform` returns the pooled bottleneck
# representation, before the projection head. As in the source write-up, HDBSCAN runs on a
# two-dimensional UMAP of it; t-SNE shows the same clusters from another angle.
Z = StandardScaler().fit_transform(model.transform(test.images))
plane = UMAP(n_components=2, n_neighbors=15, min_dist=0.0, random_state=0).fit_transform(Z)
labels = HDBSCAN(min_cluster_size=15, copy=True).fit_predict(plane)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
plot_embedding(plane, labels, method=None, ax=axes[0], title="UMAP, HDBSCAN clusters")
axes[0].set_xlabel("UMAP 1")
axes[0].set_ylabel("UMAP 2")
tsne = TSNE(2, perplexity=30, init="pca", random_state=0).fit_transform(Z)
plot_embedding(tsne, labels, method=None, ax=axes[1], title="t-SNE, same clusters")
axes[1].set_xlabel("t-SNE 1")
axes[1].set_ylabel("t-SNE 2")

# %%
# Example galaxies of each cluster, and how the clusters relate to the true morphologies
# (which the model never saw).
plot_cluster_examples(test.images, labels, n_per_cluster=8)
names = np.asarray(test.target_names)[test.target]
print(pd.crosstab(pd.Series(labels, name="cluster"), pd.Series(names, name="morphology")))
