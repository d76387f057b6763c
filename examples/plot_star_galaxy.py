"""
Unsupervised star-galaxy separation and segmentation
=====================================================

:class:`~skastro.StarGalaxyClassifier` is the recommended way to separate stars from galaxies
without labels: it measures the light profile in one band and learns, from the images alone,
what point sources look like (see its page; on survey variants it was not developed on it
beats the concentration index on all 5, ``benchmarks/results/shift.md``). This example puts
it next to a research method, :class:`~skastro.CondVAEClassifier`: a residual
autoencoder whose latent has one *class unit*, pulled toward a bimodal prior
``½ N(-m, s²) + ½ N(m, s²)``, next to free units that carry everything else the
reconstruction needs. Which mode an image falls in is its class; the labels, when given to
``fit``, only *name* the two modes. We compare it on synthetic five-band SDSS-like cutouts
with the baselines of the write-up it comes from (a plain VAE mapped to one dimension with
Isomap, PCA + a Gaussian mixture) and with the classic concentration index, then segment the
images with :class:`~skastro.HypercolumnSegmenter`.

``benchmarks/bench_star_galaxy.py`` runs the same comparison at full size over ten seeds.
"""

# %%
# Data
# ----
# Stars and galaxies in u, g, r, i, z, 64x64 pixels, with realistic sky noise, seeing and
# many faint, compact galaxies that look like stars. For display and segmentation, every
# band of every image is put in units of its own sky noise (measured on the image border)
# and stretched with ``arcsinh``, so that faint objects stay visible.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import Isomap
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from skastro import (
    CondVAEClassifier,
    HypercolumnSegmenter,
    PeakScaler,
    StarGalaxyClassifier,
    VariationalAutoencoder,
)
from skastro.datasets import make_star_galaxy
from skastro.plotting import plot_roc

sky = make_star_galaxy(900, random_state=0)
n_train = 600
y = sky.target  # 0 = STAR, 1 = GALAXY; only used to name modes and to score


def sky_sigma(images, border=8):
    frame = np.concatenate([images[..., :border, :], images[..., -border:, :]], axis=-2)
    frame = frame.reshape(*images.shape[:2], -1)
    deviation = np.abs(frame - np.median(frame, axis=-1, keepdims=True))
    return 1.4826 * np.median(deviation, axis=-1) + 1e-12


X = np.arcsinh(sky.images / (3 * sky_sigma(sky.images)[:, :, None, None])).astype(np.float32)
X_train, X_test = X[:n_train], X[n_train:]
y_train, y_test = y[:n_train], y[n_train:]

fig, axes = plt.subplots(2, 6, figsize=(9, 3.3))
for row, label in enumerate((0, 1)):
    for ax, i in zip(axes[row], np.flatnonzero(y == label)[:6]):
        ax.imshow(X[i, 2], cmap="gray", origin="lower")
        ax.set_axis_off()
    axes[row, 0].set_title(sky.target_names[label], loc="left", fontsize=9)
fig.suptitle("r band, in sky-noise units (arcsinh)")

# %%
# Inputs for classification
# -------------------------
# A network trained without labels learns the strongest variation in its input, and across
# these images that is brightness (they span six magnitudes). So the classifiers see
# brightness-free inputs: the r band of each image divided by its central peak and stretched
# (:class:`~skastro.PeakScaler`), central 24 x 24 pixels. Colours are left out on purpose:
# the stellar locus and the galaxies' colours offer other two-way splits. And they train on
# the brighter half of the training images (aperture signal-to-noise above its median,
# measured without labels), where shape, not noise, is what differs between images.
yy, xx = np.mgrid[:64, :64] - 31.5
radius = np.hypot(yy, xx)
aperture = radius <= 6
snr = sky.images[:n_train, 2][:, aperture].sum(1) / (
    sky_sigma(sky.images[:n_train])[:, 2] * np.sqrt(aperture.sum())
)
bright = snr > np.median(snr)
M = PeakScaler(crop=24).fit_transform(sky.images[:, [2]])
M_train, M_test = M[:n_train], M[n_train:]

# %%
# The conditional-VAE classifier
# -------------------------------
# ``y_train`` is passed to ``fit`` only to *name* the two modes (``classes_`` becomes
# ``["GALAXY", "STAR"]`` ordered like ``y``'s labels, and the mode that agrees best with
# each); the network never sees it. ``class_prior`` is the expected fraction of
# ``classes_[1]`` (prior knowledge such as a known star-galaxy proportion) and sets the
# threshold of :meth:`~skastro.CondVAEClassifier.predict`.
names = np.asarray(sky.target_names)[y_train]
clf = CondVAEClassifier(
    n_components=4,
    widths=(16, 32, 64),
    prior_distance="wasserstein",
    max_epochs=15,
    batch_size=128,
    augment=True,
    class_prior=0.5,
    random_state=0,
).fit(M_train[bright], names[bright])
print("classes:", clf.classes_, " threshold:", round(clf.threshold_, 3))

Z = clf.transform(M_test)  # column 0: the class unit; then the free units
scores = {"CondVAEClassifier": clf.decision_function(M_test)}
is_star = np.asarray(sky.target_names)[y_test] == clf.classes_[1]

fig, ax = plt.subplots(figsize=(5, 4))
for label, colour in ((False, "tab:blue"), (True, "tab:orange")):
    chosen = is_star == label
    name = clf.classes_[int(label)]
    ax.scatter(Z[chosen, 0], Z[chosen, 1], s=6, alpha=0.6, color=colour, label=name)
ax.set_xlabel("class unit")
ax.set_ylabel("free unit 1")
ax.legend(title="true class")
ax.set_title("CondVAEClassifier latent, test images")

# %%
# Baselines
# ---------
# The write-up's baseline: a plain VAE, its latent mapped to one dimension with Isomap.
# A Gaussian mixture on PCA components. And the concentration index - the flux within
# 2 px of the centre over the flux within 6 px, in the r band: stars are point sources,
# the most concentrated objects. Every unsupervised score is oriented with the training
# labels, as the classifier's modes are.


def orient(score_fit, score_test):
    agrees = roc_auc_score(names[bright] == clf.classes_[1], score_fit) >= 0.5
    return score_test if agrees else -score_test


M_fit = M_train[bright]
vae = VariationalAutoencoder(
    n_components=8,
    widths=(16, 32, 64),
    max_epochs=15,
    batch_size=128,
    augment=True,
    random_state=0,
)
latent_fit = vae.fit(M_fit).transform(M_fit)
isomap = Isomap(n_neighbors=15, n_components=1).fit(latent_fit)
scores["VAE + Isomap"] = orient(
    isomap.transform(latent_fit)[:, 0], isomap.transform(vae.transform(M_test))[:, 0]
)

flat_fit, flat_test = M_fit.reshape(len(M_fit), -1), M_test.reshape(len(M_test), -1)
pca = PCA(10, random_state=0).fit(flat_fit)
gmm = GaussianMixture(2, random_state=0).fit(pca.transform(flat_fit))
scores["PCA + GMM"] = orient(
    gmm.predict_proba(pca.transform(flat_fit))[:, 1],
    gmm.predict_proba(pca.transform(flat_test))[:, 1],
)

# %%
# The recommended default, :class:`~skastro.StarGalaxyClassifier`, takes the raw cutouts and
# the index of the band to measure (2: r in ugriz); its decision function is the galaxy
# log-odds, so it is flipped when the ROC's positive class is STAR.
sgc = StarGalaxyClassifier(band=2, random_state=0).fit(sky.images[:n_train])
galaxy_odds = sgc.decision_function(sky.images[n_train:])
scores["StarGalaxyClassifier"] = -galaxy_odds if clf.classes_[1] == "STAR" else galaxy_odds

r_band = sky.images[n_train:, 2]
concentration = r_band[:, radius <= 2].sum(1) / r_band[:, radius <= 6].sum(1)
scores["concentration index"] = concentration if clf.classes_[1] == "STAR" else -concentration

ax = plot_roc(is_star, scores)
ax.set_title(f"{clf.classes_[1]} vs {clf.classes_[0]}, held-out images")

# %%
# Segmentation
# ------------
# :class:`~skastro.HypercolumnSegmenter` trains a residual autoencoder, describes every
# pixel by the feature maps of several layers at that position (upsampled to full
# resolution) and clusters the pixels with k-means into three segments: sky, faint
# outskirts and bright parts. Label 0 is the background, the segment of lowest mean
# intensity. We compare everything but the background with the generator's masks (pixels
# where the noise-free r-band image is above the sky noise).
segmenter = HypercolumnSegmenter(n_segments=3, max_epochs=4, random_state=0)
segmenter.fit(X_train[:300])
labels = segmenter.predict(X_test[:6])
truth = sky.masks[n_train : n_train + 6] > 0
iou = np.logical_and(labels != 0, truth).sum() / np.logical_or(labels != 0, truth).sum()

fig, axes = plt.subplots(3, 6, figsize=(9, 4.8))
for k in range(6):
    axes[0, k].imshow(X_test[k, 2], cmap="gray", origin="lower")
    axes[1, k].imshow(labels[k], cmap="viridis", origin="lower", vmin=0, vmax=2)
    axes[2, k].imshow(truth[k], cmap="viridis", origin="lower", vmin=0, vmax=1)
for ax in axes.ravel():
    ax.set_axis_off()
for row, title in enumerate(("r band", "segments (0 = sky)", "true mask")):
    axes[row, 0].set_title(title, loc="left", fontsize=9)
fig.suptitle(f"HypercolumnSegmenter, foreground IoU {iou:.2f} on these images")
plt.show()
