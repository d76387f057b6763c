"""KFoldEnsemble: K copies of an autoencoder, each trained on K-1 of K folds, used as one."""

import numbers

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.linalg import orthogonal_procrustes
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _is_fitted, _num_samples, check_is_fitted

from skastro._constraints import refuse_bools
from skastro.distributed._arrays import accepts_dask

__all__ = ["KFoldEnsemble", "generalized_procrustes"]

# Generalised Procrustes analysis stops when the consensus moves less than this (relative).
_GPA_TOL = 1e-7
_GPA_MAX_ITER = 100


def generalized_procrustes(latents, *, reference=0, max_iter=_GPA_MAX_ITER, tol=_GPA_TOL):
    """Rotate several embeddings of the same points onto a common basis.

    Each embedding is centred, then all are aligned by orthogonal transforms (rotations and
    reflections, no scaling, so distances inside each embedding are kept) to their consensus,
    which is updated as the mean of the aligned embeddings until it stops moving (generalised
    Procrustes analysis; Gower 1975). Finally everything is turned so that the consensus is
    expressed in the basis of embedding ``reference``.

    Parameters
    ----------
    latents : sequence of ndarray of shape (n, d)
        The embeddings of the same n points (the same d for all).
    reference : int, default=0
        Whose basis the result is expressed in.
    max_iter : int, default=100
    tol : float, default=1e-7

    Returns
    -------
    centers : ndarray of shape (k, d)
        The mean of each embedding (subtracted before rotating).
    rotations : ndarray of shape (k, d, d)
        Orthogonal matrices: ``(Z_k - centers[k]) @ rotations[k]`` are the aligned embeddings.
    residuals : ndarray of shape (k,)
        Relative misfit ``||aligned_k - consensus|| / ||consensus||`` of each embedding after
        alignment (0 when the embeddings differ only by a rotation).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(20, 3))
    >>> Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    >>> centers, rotations, residuals = generalized_procrustes([Z, Z @ Q + 5.0])
    >>> bool(np.allclose((Z @ Q + 5.0 - centers[1]) @ rotations[1], Z - centers[0]))
    True
    """
    latents = [np.asarray(Z, dtype=np.float64) for Z in latents]
    shapes = {Z.shape for Z in latents}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(
            "Procrustes alignment needs embeddings of one common shape (n, d), got "
            f"{sorted(shapes)}"
        )
    centers = np.stack([Z.mean(axis=0) for Z in latents])
    centred = [Z - c for Z, c in zip(latents, centers)]
    consensus = centred[reference]
    rotations = [np.eye(consensus.shape[1])] * len(centred)
    for _ in range(max_iter):
        rotations = [orthogonal_procrustes(Z, consensus)[0] for Z in centred]
        updated = np.mean([Z @ R for Z, R in zip(centred, rotations)], axis=0)
        moved = np.linalg.norm(updated - consensus)
        consensus = updated
        if moved <= tol * max(np.linalg.norm(consensus), 1e-300):
            break
    # express the consensus in the reference embedding's own basis
    turn = orthogonal_procrustes(consensus, centred[reference])[0]
    rotations = np.stack([R @ turn for R in rotations])
    consensus = consensus @ turn
    scale = max(np.linalg.norm(consensus), 1e-300)
    residuals = np.array(
        [np.linalg.norm(Z @ R - consensus) / scale for Z, R in zip(centred, rotations)]
    )
    return centers, rotations, residuals


def _fit_member(estimator, X, y, index):
    if y is None:
        return estimator.fit(_safe_indexing(X, index))
    return estimator.fit(_safe_indexing(X, index), y[index])


def _members_have(*names):
    """True when the members have one of ``names`` (for :func:`available_if`)."""

    def has(member):
        return any(hasattr(member, name) for name in names)

    def check(self):
        members = getattr(self, "estimators_", None)
        if members is not None:
            return all(has(member) for member in members)
        return has(self._member_template())

    return check


def _labels_two_classes(self):
    """True for an ensemble of two-class labellers such as CondVAEClassifier."""
    if hasattr(self, "estimators_"):
        return hasattr(self, "signs_")
    template = self._member_template()
    return hasattr(template, "decision_function") and hasattr(template, "predict_proba")


def _positive_int(value, name):
    """``value`` if it is a positive int (not a bool) read from a model file, else an error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"'{name}' must be a positive int, got {value!r}")
    return value


def _check_input(X):
    if sp.issparse(X):
        raise TypeError(
            "Sparse data was passed for X, but dense data is required: KFoldEnsemble's members "
            "take dense images. Use X.toarray() to convert to a dense numpy array."
        )
    # anything indexable goes to the members as it is (memmaps, HDF5 datasets stay lazy)
    return X if hasattr(X, "__getitem__") else np.asarray(X)


class KFoldEnsemble(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Ensemble of K autoencoders, each trained on K-1 of K folds of the data.

    On small data sets one autoencoder tends to fit the patterns that lower the loss over the
    whole set and to miss the rarer kinds of image; K members that each saw a different 90%
    of the data, averaged, reconstruct better (the protoplanetary-disk write-up reports MSE
    0.061 and MS-SSIM 0.971 with 10 folds).

    - :meth:`reconstruct` averages the members' reconstructions.
    - :meth:`transform` combines the members' latents. Each member learns its own latent basis
      (units in any order, any sign, rotated), so the latents cannot simply be averaged. With
      ``combine="procrustes"`` (default) the members' latents of the training images are
      centred and aligned by orthogonal transforms to their consensus (generalised Procrustes
      analysis, expressed in the first member's basis); ``transform`` returns the mean of the
      aligned member latents, ``mean_k (z_k(x) - c_k) R_k``, of size ``n_components``.
      Orthogonal maps keep each member's distances, so clusters are not distorted.
      ``combine="concatenate"`` returns all member latents side by side instead (size
      ``K * n_components``).

    Works with any transformer; :meth:`reconstruct` and the reconstruction :meth:`score` need
    members with ``reconstruct`` (every skastro autoencoder).

    With members that have ``decision_function`` (:class:`~skastro.CondVAEClassifier`), the
    ensemble is also a two-class labeller that averages training runs (on
    ``benchmarks/bench_star_galaxy.py`` three averaged runs did not lower the spread between
    seeds: see ``benchmarks/RESULTS.md``):

    - :meth:`decision_function` averages the members' decision functions. Without ``y`` each
      member's sign is arbitrary (which mode it calls class 1), so every member is first
      turned to agree with the first one: ``signs_[k]`` is the sign of the correlation of its
      decision values with the first member's on the training images. With ``y``, each
      member names its modes from its own training folds, and the signs still align them to
      the first member.
    - :meth:`predict_proba` averages the members' probabilities (with the classes of a
      turned member swapped).
    - :meth:`predict` says ``classes_[1]`` where the decision function exceeds
      ``threshold_``: 0, or, when the members have a ``class_prior``, the quantile of the
      ensemble's decision values on the training images that gives class 1 that share.

    Parameters
    ----------
    estimator : estimator or None, default=None
        The member, cloned K times; ``None`` means
        :class:`~skastro.EquivariantAutoencoder` with its defaults. Members with a
        ``random_state`` parameter each get a different seed drawn from ``random_state``.
    n_splits : int, default=10
        Number of folds and members (at least 2).
    train_on : {"folds", "all"}, default="folds"
        ``"folds"``: each member trains on the images outside its fold. ``"all"``: every
        member trains on all the images and they differ only in their seeds (a seed ensemble,
        for methods whose training runs vary more than the data can afford to be split;
        ``fold_indices_`` are then empty).
    combine : {"procrustes", "concatenate"}, default="procrustes"
        How :meth:`transform` combines the member latents (see above).
    shuffle : bool, default=True
        Shuffle the images before splitting into folds.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and the members' seeds.
    n_jobs : int or None, default=None
        Members trained in parallel with joblib (``-1``: all cores). Each worker then uses
        fewer torch threads.
    verbose : int, default=0
        joblib's progress messages.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members.
    fold_indices_ : list of ndarray
        The training-image indices held out from each member (its validation fold; empty
        with ``train_on="all"``).
    centers_ : ndarray of shape (n_splits, n_components)
        Mean latent of each member on the training images (``combine="procrustes"``).
    rotations_ : ndarray of shape (n_splits, n_components, n_components)
        Orthogonal alignment of each member (``combine="procrustes"``).
    alignment_residuals_ : ndarray of shape (n_splits,)
        Relative misfit of each member after alignment: near 0 when the members learnt the
        same latent space up to a rotation, about 1 or more when they learnt unrelated ones
        (for independent random latents: 0.9 with 2 members, 1.2 with 3, 2.3 with 10).
    signs_ : ndarray of shape (n_splits,)
        +1 or -1 per member: how its decision function is turned to agree with the first
        member's (only with members that have ``decision_function``).
    classes_ : ndarray of shape (2,)
        The first member's class labels (only with members that have ``decision_function``).
    threshold_ : float
        Decision value above which :meth:`predict` says ``classes_[1]`` (only with members
        that have ``decision_function``).
    n_features_in_ : int
        Number of features per image seen in ``fit``.

    See Also
    --------
    EquivariantAutoencoder, ConvAutoencoder : typical members.

    Examples
    --------
    >>> import numpy as np
    >>> from skastro import ConvAutoencoder, KFoldEnsemble
    >>> X = np.random.default_rng(0).random((30, 1, 8, 8), dtype=np.float32)
    >>> member = ConvAutoencoder(n_components=3, widths=(4,), max_epochs=1)
    >>> ensemble = KFoldEnsemble(member, n_splits=3, random_state=0).fit(X)
    >>> len(ensemble.estimators_)
    3
    >>> ensemble.transform(X).shape
    (30, 3)
    >>> ensemble.reconstruct(X).shape
    (30, 1, 8, 8)
    """

    # every fitted attribute a saved ensemble may hold (see _fitted_state)
    _fitted_state_keys = (
        "estimators_",
        "fold_indices_",
        "_n_features_out",
        "n_features_in_",
        "centers_",
        "rotations_",
        "alignment_residuals_",
        "signs_",
        "classes_",
        "threshold_",
    )

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "transform"]), None],
        "n_splits": [Interval(numbers.Integral, 2, None, closed="left")],
        "train_on": [StrOptions({"folds", "all"})],
        "combine": [StrOptions({"procrustes", "concatenate"})],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    }
    _parameter_constraints = refuse_bools(_parameter_constraints)

    def __init__(
        self,
        estimator=None,
        *,
        n_splits=10,
        train_on="folds",
        combine="procrustes",
        shuffle=True,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.n_splits = n_splits
        self.train_on = train_on
        self.combine = combine
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _member_template(self):
        if self.estimator is not None:
            return self.estimator
        from skastro.estimators.equivariant_autoencoder import EquivariantAutoencoder

        return EquivariantAutoencoder()

    def fit(self, X, y=None):
        """Train ``n_splits`` clones, each on the images outside one fold.

        Parameters
        ----------
        X : array-like
            Training images, in any layout the members accept.
        y : array-like of shape (n,) or None, default=None
            Passed on to each member's ``fit`` with its training images (members that learn
            without labels ignore it; :class:`~skastro.CondVAEClassifier` uses it only to
            name its two modes). The folds are then stratified by ``y``, so that every
            member's training images hold every class (when each class has at least
            ``n_splits`` images).

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = _check_input(X)
        n_samples = _num_samples(X)
        if y is not None:
            y = np.asarray(y)
            if len(y) != n_samples:
                raise ValueError(
                    f"y has {len(y)} labels but X has {n_samples} images; pass one label per "
                    "image, or no y"
                )
        if n_samples < self.n_splits and self.train_on == "folds":
            raise ValueError(
                f"KFoldEnsemble with n_splits={self.n_splits} needs at least that many images, "
                f"got n_samples = {n_samples}"
            )
        rng = check_random_state(self.random_state)
        split_seed = int(rng.randint(np.iinfo(np.int32).max)) if self.shuffle else None
        if self.train_on == "all":  # no folds: every member sees every image
            everything = np.arange(n_samples)
            train_test = [(everything, everything[:0])] * self.n_splits
        else:
            # with labels, every training fold keeps every class (a member such as
            # CondVAEClassifier names its two modes from them), when each class can be split
            stratify = (
                y is not None
                and type_of_target(y) in ("binary", "multiclass")
                and np.unique(y, return_counts=True)[1].min() >= self.n_splits
            )
            splitter = StratifiedKFold if stratify else KFold
            folds = splitter(self.n_splits, shuffle=self.shuffle, random_state=split_seed)
            train_test = list(folds.split(np.arange(n_samples), y if stratify else None))
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_splits)

        members = []
        for seed in seeds:
            member = clone(self._member_template())
            if "random_state" in member.get_params(deep=False):
                member.set_params(random_state=int(seed))
            members.append(member)
        self.estimators_ = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(_fit_member)(member, X, y, train)
            for member, (train, _) in zip(members, train_test)
        )
        self.fold_indices_ = [test for _, test in train_test]
        first = self.estimators_[0]
        self.n_features_in_ = getattr(first, "n_features_in_", None)
        if self.n_features_in_ is None:
            del self.n_features_in_
        latents = [np.asarray(member.transform(X)) for member in self.estimators_]
        if self.combine == "procrustes":
            self.centers_, self.rotations_, self.alignment_residuals_ = generalized_procrustes(
                latents
            )
            self._n_features_out = latents[0].shape[1]
        else:
            self._n_features_out = sum(Z.shape[1] for Z in latents)
        if all(
            hasattr(member, "decision_function") and len(getattr(member, "classes_", ())) == 2
            for member in self.estimators_
        ):
            self._fit_labeller(X)
        return self

    def _fit_labeller(self, X):
        """Signs that turn each member to agree with the first, the classes and threshold."""
        decisions = np.array(
            [np.asarray(m.decision_function(X), dtype=np.float64) for m in self.estimators_]
        )
        first = decisions[0] - decisions[0].mean()
        # a member whose decision values do not vary (or are orthogonal to the first's) has
        # nothing to agree on and keeps its sign
        agreement = (decisions - decisions.mean(axis=1, keepdims=True)) @ first
        self.signs_ = np.where(agreement < 0, -1.0, 1.0)
        self.classes_ = np.asarray(self.estimators_[0].classes_)
        class_prior = getattr(self.estimators_[0], "class_prior", None)
        if class_prior is None:
            self.threshold_ = 0.0
        else:
            combined = np.mean(self.signs_[:, None] * decisions, axis=0)
            self.threshold_ = float(np.quantile(combined, 1.0 - class_prior))

    @accepts_dask
    def transform(self, X):
        """Combined latent of the members (see the class description).

        Parameters
        ----------
        X : array-like
            Images.

        Returns
        -------
        Z : ndarray of shape (n, n_components) or (n, n_splits * n_components), float32
        """
        check_is_fitted(self)
        X = _check_input(X)
        latents = [np.asarray(member.transform(X)) for member in self.estimators_]
        if self.combine == "concatenate":
            return np.hstack(latents).astype(np.float32, copy=False)
        aligned = [
            (Z.astype(np.float64) - center) @ rotation
            for Z, center, rotation in zip(latents, self.centers_, self.rotations_)
        ]
        return np.mean(aligned, axis=0).astype(np.float32)

    @available_if(_labels_two_classes)
    @accepts_dask
    def decision_function(self, X):
        """Mean of the members' decision functions, each turned by ``signs_``.

        Parameters
        ----------
        X : array-like
            Images with the shape seen in ``fit``.

        Returns
        -------
        scores : ndarray of shape (n,), float64
            Higher means more likely ``classes_[1]``.
        """
        check_is_fitted(self)
        X = _check_input(X)
        decisions = [
            sign * np.asarray(member.decision_function(X), dtype=np.float64)
            for member, sign in zip(self.estimators_, self.signs_)
        ]
        return np.mean(decisions, axis=0)

    @available_if(_labels_two_classes)
    @accepts_dask
    def predict_proba(self, X):
        """Mean of the members' class probabilities (columns of turned members swapped).

        Parameters
        ----------
        X : array-like
            Images with the shape seen in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n, 2), float64
            ``[P(classes_[0]), P(classes_[1])]``; rows sum to 1.
        """
        check_is_fitted(self)
        X = _check_input(X)
        probas = []
        for member, sign in zip(self.estimators_, self.signs_):
            proba = np.asarray(member.predict_proba(X), dtype=np.float64)
            probas.append(proba if sign > 0 else proba[:, ::-1])
        return np.mean(probas, axis=0)

    @available_if(_labels_two_classes)
    @accepts_dask
    def predict(self, X):
        """Class labels: ``classes_[1]`` where the decision function exceeds ``threshold_``.

        Parameters
        ----------
        X : array-like
            Images with the shape seen in ``fit``.

        Returns
        -------
        labels : ndarray of shape (n,)
        """
        scores = self.decision_function(X)
        return self.classes_[(scores > self.threshold_).astype(int)]

    @available_if(_members_have("reconstruct"))
    @accepts_dask
    def reconstruct(self, X):
        """Average of the members' reconstructions.

        Parameters
        ----------
        X : array-like
            Images with the shape seen in ``fit``.

        Returns
        -------
        X_rec : ndarray, float32
            Reconstructions in the same layout and units as ``X``.
        """
        check_is_fitted(self)
        X = _check_input(X)
        total = None
        for member in self.estimators_:
            reconstruction = np.asarray(member.reconstruct(X), dtype=np.float64)
            total = reconstruction if total is None else total + reconstruction
        return (total / len(self.estimators_)).astype(np.float32)

    @available_if(_members_have("reconstruct", "score"))
    def score(self, X, y=None):
        """Negative mean squared error of the ensemble reconstruction (higher is better).

        As for a single skastro autoencoder, the error is per pixel in units of the per-channel
        standard deviation of the training images (averaged over the members). Members
        without ``reconstruct`` give the mean of their own scores instead.

        Parameters
        ----------
        X : array-like
            Images.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        X = _check_input(X)
        if not all(hasattr(m, "reconstruct") for m in self.estimators_):
            return float(np.mean([member.score(X) for member in self.estimators_]))
        reconstruction = self.reconstruct(X)
        n = _num_samples(X)
        first = self.estimators_[0]
        shape = getattr(first, "image_shape_", None)
        original = np.asarray(X, dtype=np.float64)
        if shape is None:
            error = (original.reshape(n, -1) - reconstruction.reshape(n, -1)) ** 2
            return -float(error.mean())
        std = np.mean([m.channel_std_ for m in self.estimators_], axis=0).reshape(1, -1, 1, 1)
        error = (original.reshape(n, *shape) - reconstruction.reshape(n, *shape)) / std
        return -float((error**2).mean())

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Save the ensemble, fitted or not, to a directory loadable without pickle.

        Writes ``model.json`` with the parameters and the alignment (``centers_``,
        ``rotations_``, ...) and one sub-folder per fitted member under ``parts/``, each a
        model folder of its own; load it with :func:`skastro.load`. The members must be
        skastro estimators (a scikit-learn member is refused with a ``TypeError``; use
        pickle/joblib for such ensembles).

        Parameters
        ----------
        path : str or path-like
            Directory to create (or overwrite the model files in).

        Returns
        -------
        path : pathlib.Path
        """
        from skastro.serialization import save

        return save(self, path)

    def _fitted_state(self):
        # read by skastro.serialization: members are written to sub-folders as estimators
        state = {
            "estimators_": list(self.estimators_),
            "fold_indices_": [np.asarray(fold) for fold in self.fold_indices_],
            "_n_features_out": int(self._n_features_out),
        }
        if hasattr(self, "n_features_in_"):
            state["n_features_in_"] = int(self.n_features_in_)
        if self.combine == "procrustes":
            state["centers_"] = self.centers_
            state["rotations_"] = self.rotations_
            state["alignment_residuals_"] = self.alignment_residuals_
        if hasattr(self, "signs_"):
            state["signs_"] = self.signs_
            # as a list: labels may be strings, which the array encoding does not take
            state["classes_"] = self.classes_.tolist()
            state["threshold_"] = float(self.threshold_)
        return state

    def _restore_fitted_state(self, state):
        # only the names _fitted_state writes, each checked: a model file must not be able to
        # set arbitrary attributes ("__dict__", methods) or inconsistent ones
        unknown = sorted(set(state) - set(self._fitted_state_keys))
        if unknown:
            raise ValueError(f"unknown fitted attribute(s) {unknown}")
        missing = [k for k in ("estimators_", "fold_indices_", "_n_features_out") if k not in state]
        if missing:
            raise ValueError(f"missing fitted attribute(s) {missing}")
        members = state["estimators_"]
        if not isinstance(members, list) or not members:
            raise ValueError("'estimators_' must be a non-empty list of fitted members")
        template = type(self._member_template())
        for member in members:
            if type(member) is not template or not _is_fitted(member):
                raise ValueError(
                    f"'estimators_' must hold fitted {template.__name__} members, got "
                    f"{type(member).__name__}"
                )
        folds = state["fold_indices_"]
        if not isinstance(folds, list) or len(folds) != len(members):
            raise ValueError("'fold_indices_' must hold one index array per member")
        folds = [np.asarray(fold) for fold in folds]
        if any(fold.ndim != 1 or (fold.size and fold.dtype.kind not in "iu") for fold in folds):
            raise ValueError("'fold_indices_' must hold 1-D integer arrays")
        n_out = _positive_int(state["_n_features_out"], "_n_features_out")
        n = len(members)
        shapes = {
            "centers_": (n, None),
            "rotations_": (n, None, None),
            "alignment_residuals_": (n,),
            "signs_": (n,),
        }
        arrays = {}
        for name, shape in shapes.items():
            if name not in state:
                continue
            value = np.asarray(state[name], dtype=np.float64)
            if value.ndim != len(shape) or value.shape[0] != n:
                raise ValueError(f"'{name}' must have shape {shape}, got {value.shape}")
            if name != "alignment_residuals_" and not np.isfinite(value).all():
                raise ValueError(f"'{name}' holds NaN or inf")
            arrays[name] = value.astype(np.asarray(state[name]).dtype, copy=False)
        if self.combine == "procrustes" and not {"centers_", "rotations_"} <= set(arrays):
            raise ValueError("combine='procrustes' needs 'centers_' and 'rotations_'")
        if "signs_" in arrays and not np.isin(arrays["signs_"], (-1.0, 1.0)).all():
            raise ValueError("'signs_' must hold 1 or -1 per member")
        # the pieces must fit each other: each member's latent width d, the combination's
        widths = {m._n_latent() for m in members if hasattr(m, "_n_latent")}
        if len(widths) > 1:
            raise ValueError(f"the members' latents differ in width: {sorted(widths)}")
        if widths:
            d = widths.pop()
            expected = d if self.combine == "procrustes" else n * d
            if n_out != expected:
                raise ValueError(
                    f"'_n_features_out' is {n_out}, but {n} members of width {d} combined by "
                    f"{self.combine!r} give {expected}"
                )
            if self.combine == "procrustes":
                if arrays["centers_"].shape != (n, d) or arrays["rotations_"].shape != (n, d, d):
                    raise ValueError(
                        f"'centers_' and 'rotations_' must have shapes {(n, d)} and {(n, d, d)} "
                        f"for members of width {d}, got {arrays['centers_'].shape} and "
                        f"{arrays['rotations_'].shape}"
                    )
                rotations = arrays["rotations_"].astype(np.float64)
                product = rotations @ np.swapaxes(rotations, 1, 2)
                if not np.allclose(product, np.eye(d), atol=1e-4):
                    raise ValueError("'rotations_' must hold orthogonal matrices")
        self.estimators_, self.fold_indices_, self._n_features_out = members, folds, n_out
        for name, value in arrays.items():
            setattr(self, name, value)
        if "n_features_in_" in state:
            self.n_features_in_ = _positive_int(state["n_features_in_"], "n_features_in_")
        if "signs_" in state:
            classes = np.asarray(state.get("classes_"))
            threshold = float(state.get("threshold_", np.nan))
            if classes.shape != (2,) or not np.isfinite(threshold):
                raise ValueError("'classes_' must be two labels and 'threshold_' a finite number")
            self.classes_, self.threshold_ = classes, threshold

    def __sklearn_tags__(self):
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        member_tags = get_tags(self._member_template())
        tags.input_tags = member_tags.input_tags
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = member_tags.non_deterministic
        return tags
