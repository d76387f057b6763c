"""Exception types users can catch, one per kind of failure."""


class DataLoadError(OSError):
    """A file could not be read as astronomical image data.

    Raised by every loader in :mod:`skastro.datasets` whatever the underlying library raised
    (astropy, numpy, h5py, Pillow), so one ``except DataLoadError`` covers a corrupt FITS file,
    a truncated ``.npy`` and an unreadable PNG alike. The offending file is in
    :attr:`filename` and in the message; the original exception is chained as ``__cause__``.

    Parameters
    ----------
    filename : str or path-like
        The file that failed.
    reason : str
        What was wrong, in words a user can act on.
    """

    def __init__(self, filename, reason):
        self.filename = str(filename)
        self.reason = reason
        super().__init__(f"cannot read {self.filename}: {reason}")

    def __str__(self):
        # OSError.__str__ would print "[Errno None] None: <filename>" and hide the reason.
        return f"cannot read {self.filename}: {self.reason}"

    def __reduce__(self):
        return (type(self), (self.filename, self.reason))


class NonFiniteLossError(FloatingPointError):
    """Training stopped because a loss became NaN or infinite.

    skorch keeps training through a NaN loss, and early stopping can hide it, so skastro's
    estimators check every batch and stop with this error. The estimator is left unfitted.
    """


class ModelFormatError(ValueError):
    """A saved model directory is missing, damaged or from an incompatible format version."""
