"""
Orientation-invariant latents of protoplanetary disks
=====================================================

A disk's orientation on the sky says nothing about whether a planet is carving it, so its
latent representation should not depend on it. :class:`~skastro.EquivariantAutoencoder`
builds that in: its escnn encoder is equivariant to the dihedral group D8 (rotations by
multiples of 45 degrees, and flips), and its latent is pooled over the group and over space.
We train it on synthetic disks (some with planet signatures: gaps, kinks, spirals, point
sources), compare it with :class:`~skastro.ConvAutoencoder` and PCA on reconstruction,
clustering, a linear probe of the planet label and rotation sensitivity (a miniature of
``benchmarks/bench_disks.py``), then look at the reconstructions, the embedding, example disks
per cluster, and the latent distances between a disk, its rotated copy and other disks.
"""

# %%
# Data and models
# ---------------
# 32x32 disks keep this example to a minute or two; the benchmark uses 64x64. The planet
# labels are only used to score and colour the results.
import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import rotate
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skastro import ConvAutoencoder, EquivariantAutoencoder
from skastro.datasets import make_disks
from skastro.metrics import equivariance_error, ms_ssim
from skastro.plotting import (
    plot_cluster_examples,
    plot_embedding,
    plot_image,
    plot_reconstructions,
)

train = make_disks(200, image_size=32, signature_strength=1.0, random_state=0)
test = make_disks(100, image_size=32, signature_strength=1.0, random_state=1)


def flatten(X):
    return X.reshape(len(X), -1)


common = dict(n_components=8, widths=(32, 64), max_epochs=8, random_state=0)
models = {
    # PCA takes flat rows: flatten inside a pipeline so that every model takes images
    "PCA": make_pipeline(FunctionTransformer(flatten), PCA(8, random_state=0)),
    "ConvAutoencoder": ConvAutoencoder(**common),
    "EquivariantAutoencoder (D8)": EquivariantAutoencoder(**common),
}
for model in models.values():
    model.fit(train.images)

# %%
# The table in miniature
# ----------------------
# ``ms_ssim``: reconstruction quality of held-out disks; ``ari``: KMeans (k = 2) clusters
# against the planet label; ``probe``: logistic regression of the planet label on the latent
# (0.5 is chance); ``err_rot90`` / ``err_rot45``: relative change of the latent when the disks
# are rotated (:func:`~skastro.metrics.equivariance_error`).


def reconstruct(name, model, X):
    if name == "PCA":
        flat = model.inverse_transform(model.transform(X))
        return flat.reshape(X.shape).astype(np.float32)
    return model.reconstruct(X)


clusters = {}
print(f"{'model':30s} ms_ssim    ari  probe  err_rot90  err_rot45")
for name, model in models.items():
    Z_train, Z_test = model.transform(train.images), model.transform(test.images)
    scaler = StandardScaler().fit(Z_train)
    kmeans = KMeans(2, n_init=10, random_state=0).fit(scaler.transform(Z_train))
    clusters[name] = kmeans.predict(scaler.transform(Z_test))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    accuracy = probe.fit(Z_train, train.target).score(Z_test, test.target)
    errors = equivariance_error(model, test.images, ("rot90", "rot45"))
    quality = ms_ssim(test.images, reconstruct(name, model, test.images))
    ari = adjusted_rand_score(test.target, clusters[name])
    print(
        f"{name:30s} {quality:7.3f} {ari:6.3f} {accuracy:6.3f} "
        f"{errors['rot90']:10.2e} {errors['rot45']:10.3f}"
    )

equivariant = models["EquivariantAutoencoder (D8)"]

# %%
# Reconstructions
# ---------------
# Held-out disks (top) and their reconstructions by the equivariant autoencoder (bottom).
plot_reconstructions(test.images, estimator=equivariant, n=8)
plt.show()

# %%
# The embedding, coloured by cluster and by planet label
# -----------------------------------------------------
Z = equivariant.transform(test.images)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
plot_embedding(Z, clusters["EquivariantAutoencoder (D8)"], method="tsne", ax=axes[0])
axes[0].set_title("KMeans clusters")
plot_embedding(Z, np.asarray(test.target_names)[test.target], method="tsne", ax=axes[1])
axes[1].set_title("planet label")
plt.show()

# %%
# Example disks per cluster
# -------------------------
plot_cluster_examples(test.images, clusters["EquivariantAutoencoder (D8)"], n_per_cluster=8)
plt.show()

# %%
# A disk, its rotated copy and a different disk
# ---------------------------------------------
# Latent distances from the first held-out disk (as in the write-up): to itself, rotated by 90
# degrees (exactly 0 up to rounding), rotated by 45 degrees, and to the nearest and farthest
# other disks. Distances are in units of the mean distance between disks.
disk = test.images[:1]
views = {
    "original": disk,
    "rotated 90": np.rot90(disk, 1, axes=(2, 3)).copy(),
    "rotated 45": rotate(disk, 45, axes=(2, 3), reshape=False, order=1).astype(np.float32),
}
others = test.images[1:]
Z_others = equivariant.transform(others)
z_disk = equivariant.transform(disk)[0]
scale = np.linalg.norm(Z - Z.mean(0), axis=1).mean()
distances = np.linalg.norm(Z_others - z_disk, axis=1) / scale
views["nearest other disk"] = others[[np.argmin(distances)]]
views["farthest other disk"] = others[[np.argmax(distances)]]

fig, axes = plt.subplots(1, len(views), figsize=(3 * len(views), 3.3))
for ax, (label, image) in zip(axes, views.items()):
    distance = np.linalg.norm(equivariant.transform(image)[0] - z_disk) / scale
    plot_image(image[0], ax=ax, title=f"{label}\ndistance {distance:.3f}")
plt.show()

# %%
# Where the planet signatures are: the residual
# ---------------------------------------------
# With all four kinds of signature mixed, size, inclination and brightness profile vary far
# more than a kink or a faint point source, and every embedding above is near chance on the
# planet label. :class:`~skastro.features.AxisymmetricResidual` subtracts each disk's own
# elliptical radial-profile model: what stays is what is not axisymmetric. One held-out disk of
# each kind (top) and its residual (middle, all on one colour scale: red above the model, blue
# below). A gap is axisymmetric, so it largely cancels; on the smooth disk only noise is left.
# :class:`~skastro.features.SoftThreshold` (bottom) then keeps only what stands 3 times above
# each residual's own noise: the point source, the arms and the kink, not the noise. Put both
# in a Pipeline in front of an embedding (``benchmarks/results/disks.md``, rows "residuals"
# and "residuals, soft-thresholded", and the user guide's "Residuals in front of an
# embedding"): on the thresholded residuals the autoencoders find the point sources too.
from skastro.features import AxisymmetricResidual, SoftThreshold

kinds = test.metadata["signature"].to_numpy()
shown = [np.flatnonzero(kinds == kind)[0] for kind in np.unique(kinds)]
residuals = AxisymmetricResidual().fit_transform(test.images[shown])
thresholded = make_pipeline(AxisymmetricResidual(), SoftThreshold(3.0)).fit_transform(
    test.images[shown]
)
fig, axes = plt.subplots(3, len(shown), figsize=(2.4 * len(shown), 7.4))
limit = np.abs(residuals).max()
for column, index in enumerate(shown):
    plot_image(test.images[index, 0], ax=axes[0, column], title=kinds[index])
    for row, (title, values) in enumerate(
        [("residual", residuals), ("thresholded", thresholded)], start=1
    ):
        axes[row, column].imshow(
            values[column, 0], cmap="RdBu_r", vmin=-limit, vmax=limit, origin="lower"
        )
        axes[row, column].set(title=title, xticks=[], yticks=[])
plt.show()
