"""Exception types users can catch, one per kind of failure."""


class DataLoadError(OSError):
    """A file could not be read as astronomical image data.

    Raised by every loader in :mod:`skastro.datasets` whatever the underlying library raised
    (astropy, numpy, h5py, Pillow), so one ``except DataLoadError`` covers a corrupt FITS file,
    a truncated ``.npy`` and an unreadable PNG alike. The offending file is in
    :attr:`filename` and in the message; the original exception is chained as ``__cause__``.

    When several files of a folder (or list) cannot be read, one error reports them all:
    :attr:`filename` and :attr:`reason` are the first one's, the message lists every one, and
    :attr:`failures` holds every ``(filename, reason)`` pair.

    Parameters
    ----------
    filename : str or path-like
        The file that failed (the first one, when several did).
    reason : str
        What was wrong, in words a user can act on.
    failures : list of (str, str) or None, default=None
        Every file that failed and why; None means just ``[(filename, reason)]``.

    Examples
    --------
    >>> error = DataLoadError("a.fits", "not a FITS file", failures=[
    ...     ("a.fits", "not a FITS file"), ("b.fits", "truncated")])
    >>> print(error)
    cannot read 2 files: a.fits (not a FITS file); b.fits (truncated)
    """

    def __init__(self, filename, reason, failures=None):
        self.filename = str(filename)
        self.reason = reason
        self.failures = [(str(f), str(r)) for f, r in failures or [(self.filename, reason)]]
        super().__init__(str(self))

    def __str__(self):
        # OSError.__str__ would print "[Errno None] None: <filename>" and hide the reason.
        if len(self.failures) > 1:
            listing = "; ".join(f"{name} ({why})" for name, why in self.failures)
            return f"cannot read {len(self.failures)} files: {listing}"
        return f"cannot read {self.filename}: {self.reason}"

    def __reduce__(self):
        return (type(self), (self.filename, self.reason, self.failures))


class NonFiniteLossError(FloatingPointError):
    """Training stopped because a loss became NaN or infinite.

    skorch keeps training through a NaN loss, and early stopping can hide it, so skastro's
    estimators check every batch and stop with this error. The estimator is left as it was
    before the call (unfitted, or with its earlier weights).
    """


class ModelFormatError(ValueError):
    """A saved model directory is missing, damaged or from an incompatible format version."""
