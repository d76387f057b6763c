"""Combine named loss terms into the total an estimator minimises, keeping each term.

Every deep estimator minimises a weighted sum of terms (``mse_weight * mse + ssim_weight *
ssim + ...``) and logs each term per epoch in ``history_`` under ``loss_<name>``, so users can
plot and ablate them. :func:`weighted_sum` does both in one place.

Torch only: no scikit-learn here.
"""

__all__ = ["weighted_sum"]


def weighted_sum(terms, weights, *, empty=None):
    """``{"loss": sum_k weights[k] * terms[k], "loss_<k>": terms[k], ...}``.

    Parameters
    ----------
    terms : dict of str to torch.Tensor
        Unweighted scalar terms, in the order they are added (the order of the sum). A term
        whose weight is 0 is best left out by the caller, so it is not even computed.
    weights : dict of str to float
        The weight of each term (missing: 1).
    empty : torch.Tensor or None
        The total when ``terms`` is empty (e.g. ``output.sum() * 0.0``, which keeps the graph
        valid when every weight is 0).

    Returns
    -------
    terms : dict of str to torch.Tensor
        ``"loss"`` (the total) first, then each term under ``"loss_<name>"``.

    Examples
    --------
    >>> import torch
    >>> out = weighted_sum({"mse": torch.tensor(2.0), "tv": torch.tensor(3.0)}, {"tv": 0.5})
    >>> {k: float(v) for k, v in out.items()}
    {'loss': 3.5, 'loss_mse': 2.0, 'loss_tv': 3.0}
    """
    total = None
    for name, value in terms.items():
        weighted = weights.get(name, 1.0) * value
        total = weighted if total is None else total + weighted
    if total is None:
        if empty is None:
            raise ValueError("no loss term to sum; pass empty= for an all-zero-weight loss")
        total = empty
    return {"loss": total, **{f"loss_{name}": value for name, value in terms.items()}}
