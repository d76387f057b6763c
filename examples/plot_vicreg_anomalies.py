"""
VICReg embeddings: retrieval and anomaly detection on galaxies
==============================================================

:class:`~skastro.VICRegEmbedder` learns an embedding of images without labels: two random
views of each galaxy (rotated, flipped, cropped, blurred, noisy) are pushed to the same
embedding (invariance), while every embedding dimension is kept spread out (variance) and
decorrelated from the others (covariance). We train it on synthetic galaxy cutouts, look at
the loss terms and the embedding, retrieve similar and dissimilar galaxies, and detect
artefacts (satellite trails, cosmic rays, saturated stars, blank frames) with
:class:`~skastro.KNNOutlierDetector`, an inverse k-nearest-neighbour density, against the
same detector on PCA components.
"""

# %%
# Data and training
# -----------------
# Four morphological classes of galaxies, 32x32 pixels with a little noise. The labels are
# only used to colour the plots.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from skastro import KNNOutlierDetector, VICRegEmbedder
from skastro.datasets import make_anomalies, make_galaxies
from skastro.plotting import plot_embedding, plot_history, plot_image, plot_retrieval, plot_roc

train = make_galaxies(600, image_size=32, noise_sigma=0.02, random_state=0)
test = make_galaxies(400, image_size=32, noise_sigma=0.02, random_state=1)
names = np.asarray(train.target_names)

embedder = VICRegEmbedder(
    n_components=64, stem_stride=2, batch_size=128, max_epochs=12, random_state=0
)
embedder.fit(train.images)

# %%
# Loss terms
# ----------
# The three terms are logged separately (unweighted), together with RankMe, the effective
# rank of the batch representations: it would drop towards 1 if the embedding collapsed.
fig, (ax_loss, ax_rank) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
plot_history(embedder, keys=["loss_invariance", "loss_variance", "loss_covariance"], ax=ax_loss)
plot_history(embedder, keys=["rankme"], ax=ax_rank)
ax_rank.set_ylabel("effective rank")

# %%
# The embedding in two dimensions
# -------------------------------
# PCA keeps the global geometry but squeezes 64 decorrelated dimensions into two; t-SNE
# keeps local neighbourhoods, where the morphological classes separate.
Z_train, Z_test = embedder.transform(train.images), embedder.transform(test.images)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
plot_embedding(Z_test, names[test.target], method="pca", ax=axes[0], title="PCA")
plot_embedding(Z_test, names[test.target], method="tsne", ax=axes[1], title="t-SNE")

# %%
# Retrieval: nearest and farthest galaxies
# ----------------------------------------
# Each row is a query (left, framed) with its five nearest and five farthest galaxies in
# the embedding.
queries = [int(np.flatnonzero(test.target == label)[0]) for label in range(4)]
axes = plot_retrieval(test.images, Z_test, queries, n_neighbors=5)

# %%
# Anomaly detection
# -----------------
# Anomalies are made from other galaxies by adding artefacts. The detector is fitted on the
# training embedding; a higher ``score_samples`` means more normal, so the anomaly score is
# its negative. The same detector on 32 PCA components of the pixels is the baseline.
anomalies = make_anomalies(
    make_galaxies(200, image_size=32, noise_sigma=0.02, random_state=2).images,
    25,
    noise_sigma=0.02,
)
X_eval = np.concatenate([test.images, anomalies.images])
is_anomaly = np.r_[np.zeros(len(test.images)), np.ones(len(anomalies.images))]

detector = KNNOutlierDetector(n_neighbors=5).fit(Z_train)
vicreg_score = -detector.score_samples(embedder.transform(X_eval))


def flat(X):
    return X.reshape(len(X), -1)


pca = PCA(32, random_state=0).fit(flat(train.images))
pca_detector = KNNOutlierDetector(n_neighbors=5).fit(pca.transform(flat(train.images)))
pca_score = -pca_detector.score_samples(pca.transform(flat(X_eval)))

ax = plot_roc(is_anomaly, {"VICReg + kNN": vicreg_score, "PCA + kNN": pca_score})
ax.set_title("artefacts vs normal galaxies")
for kind in np.unique(anomalies.kind):
    chosen = np.r_[np.ones(len(test.images), bool), anomalies.kind == kind]
    print(
        f"{kind:>16}: AUROC VICReg {roc_auc_score(is_anomaly[chosen], vicreg_score[chosen]):.3f}"
        f", PCA {roc_auc_score(is_anomaly[chosen], pca_score[chosen]):.3f}"
    )

# %%
# The most anomalous images
# -------------------------
# The twelve images with the lowest density in the VICReg embedding, with what they are.
kinds = np.r_[np.full(len(test.images), "galaxy"), anomalies.kind]
fig, axes = plt.subplots(2, 6, figsize=(10, 4), layout="constrained")
for ax, index in zip(axes.ravel(), np.argsort(vicreg_score)[::-1]):
    plot_image(X_eval[index], ax=ax, title=kinds[index].replace("_", " "))

plt.show()
