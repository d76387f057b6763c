"""End-to-end: deep estimators inside Pipelines and GridSearchCV with unsupervised scorers."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skastro import ConvAutoencoder, ImageScaler
from skastro.metrics import dbcv_scorer, silhouette_scorer


@pytest.fixture(scope="module")
def two_populations():
    """Compact and extended blobs: two obvious groups an autoencoder should keep apart."""
    rng = np.random.default_rng(0)
    n, size = 64, 16
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    widths = np.where(np.arange(n) < n // 2, 1.2, 4.5)
    X = np.exp(-(xx**2 + yy**2)[None] / (2 * widths[:, None, None] ** 2))
    X = X + 0.01 * rng.standard_normal(X.shape)
    return X[:, None].astype(np.float32), (np.arange(n) >= n // 2).astype(int)


def test_pipeline_with_scaler_autoencoder_and_clusterer(two_populations):
    from sklearn.metrics import adjusted_rand_score

    X, y = two_populations
    pipe = Pipeline(
        [
            ("scale", ImageScaler(stretch="asinh", per_image=False)),
            (
                "ae",
                ConvAutoencoder(
                    n_components=2,
                    widths=(8, 16),
                    max_epochs=15,
                    lr=3e-3,
                    batch_size=16,
                    random_state=0,
                ),
            ),
            ("cluster", KMeans(2, n_init=10, random_state=0)),
        ]
    )
    labels = pipe.fit_predict(X)
    assert adjusted_rand_score(y, labels) > 0.8
    assert silhouette_scorer(pipe, X) > 0.3


def test_grid_search_with_silhouette_and_dbcv_picks_a_best_estimator(two_populations):
    X, _ = two_populations
    pipe = Pipeline(
        [
            (
                "ae",
                ConvAutoencoder(
                    n_components=2, widths=(4, 8), max_epochs=2, batch_size=16, random_state=0
                ),
            ),
            ("cluster", KMeans(n_init=3, random_state=0)),
        ]
    )
    search = GridSearchCV(
        pipe,
        {"cluster__n_clusters": [2, 5], "ae__n_components": [2, 3]},
        scoring={"silhouette": silhouette_scorer, "dbcv": dbcv_scorer},
        refit="silhouette",
        cv=2,
    )
    search.fit(X)
    results = search.cv_results_
    assert {"mean_test_silhouette", "mean_test_dbcv"} <= set(results)
    assert np.all(np.isfinite(results["mean_test_silhouette"]))
    assert search.best_index_ == int(np.argmax(results["mean_test_silhouette"]))
    assert search.best_estimator_.predict(X).shape == (len(X),)


def test_grid_search_without_scoring_uses_estimator_score(two_populations):
    X, _ = two_populations
    search = GridSearchCV(
        ConvAutoencoder(widths=(4, 8), max_epochs=2, batch_size=16, random_state=0),
        {"n_components": [1, 4]},
        cv=2,
    )
    search.fit(X)
    assert search.best_score_ <= 0  # negative reconstruction error
