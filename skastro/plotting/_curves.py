"""Curves: training history per loss term, ROC curves."""

import numbers

import numpy as np

from skastro.plotting._common import (
    _new_axes,
)


def _history_rows(history_or_estimator):
    history = history_or_estimator
    if hasattr(history, "history_"):
        history = history.history_
    elif hasattr(history, "history") and not isinstance(history, list):
        history = history.history  # a skorch NeuralNet
    rows = list(history)
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise ValueError("expected a non-empty history: a list of dicts, one per epoch")
    return rows


def plot_history(history_or_estimator, *, keys=None, ax=None, log=False):
    """Loss terms per epoch, one line each.

    Parameters
    ----------
    history_or_estimator : skorch History, list of dict, or estimator
        The training history (one dict per epoch, e.g.
        ``[{"epoch": 1, "train_loss": 0.3, "loss_mse": 0.2}, ...]``), or an estimator whose
        ``history_`` (or skorch ``history``) holds it.
    keys : list of str or None, default=None
        Entries to draw. None: ``train_loss``, ``valid_loss`` when recorded, and every entry
        whose name starts with ``loss_`` (the loss terms skastro's estimators log).
    ax : matplotlib Axes or None, default=None
        Where to draw; a new figure if None.
    log : bool, default=False
        Logarithmic loss axis.

    Returns
    -------
    ax : matplotlib Axes
        The axes, with one line per key.

    Examples
    --------
    >>> history = [{"epoch": 1, "train_loss": 1.0, "loss_mse": 0.6},
    ...            {"epoch": 2, "train_loss": 0.5, "loss_mse": 0.3}]
    >>> ax = plot_history(history)
    >>> [line.get_label() for line in ax.lines]
    ['train_loss', 'loss_mse']
    """
    rows = _history_rows(history_or_estimator)
    recorded = list(dict.fromkeys(key for row in rows for key in row))
    if keys is None:
        keys = [key for key in ("train_loss", "valid_loss") if key in recorded]
        keys += [key for key in recorded if key.startswith("loss_")]
        if not keys:
            raise ValueError(f"no loss in the history; recorded entries: {recorded}")
    else:
        keys = [keys] if isinstance(keys, str) else list(keys)
        missing = [key for key in keys if key not in recorded]
        if missing:
            raise ValueError(f"{missing} not in the history; recorded entries: {recorded}")
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(rows)]
    ax = _new_axes(ax)
    for key in keys:
        values = [row.get(key) for row in rows]
        values = [v if isinstance(v, numbers.Real) else np.nan for v in values]
        ax.plot(epochs, values, marker=".", label=key)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.25
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return ax


def plot_roc(y_true, scores, *, pos_label=None, ax=None):
    """ROC curves of one or several scores, with their AUC in the legend.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True binary labels.
    scores : array-like of shape (n,) or dict of {str: array-like}
        Scores (higher = more positive), or several named ones to compare, e.g.
        ``{"VAE": ..., "CondVAE": ...}``.
    pos_label : int, str or None, default=None
        The positive class, as in :func:`sklearn.metrics.roc_curve`.
    ax : matplotlib Axes or None, default=None
        Where to draw; a new figure if None.

    Returns
    -------
    ax : matplotlib Axes
        The axes: one line per curve plus the dashed chance diagonal.

    Examples
    --------
    >>> ax = plot_roc([0, 0, 1, 1], {"model": [0.1, 0.4, 0.35, 0.8]})
    >>> ax.get_legend().get_texts()[0].get_text()
    'model (AUC = 0.750)'
    """
    from sklearn.metrics import auc, roc_curve

    if not isinstance(scores, dict):
        scores = {None: scores}
    ax = _new_axes(ax)
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(y_true, np.asarray(values), pos_label=pos_label)
        area = f"AUC = {auc(fpr, tpr):.3f}"
        ax.plot(fpr, tpr, label=area if name is None else f"{name} ({area})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize="small")
    return ax
