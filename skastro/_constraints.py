"""Parameter constraints shared by every estimator, on top of scikit-learn's.

``bool`` is a subclass of ``int`` in Python, so scikit-learn's ``Interval(Integral, 1, None)``
takes ``batch_size=True`` as a batch of one image, and ``Interval(Real, 0, None)`` takes
``lr=True`` as 1.0. A bool given for a number is always a mistake (a shifted positional value,
a flag typed in the wrong place, a value from a damaged model file), so every numeric interval
of skastro's estimators refuses it: :func:`refuse_bools` rewrites a ``_parameter_constraints``
dict accordingly.
"""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

__all__ = ["NumberInterval", "refuse_bools"]


class NumberInterval(Interval):
    """A scikit-learn :class:`~sklearn.utils._param_validation.Interval` that refuses bools.

    Parameters
    ----------
    type : {numbers.Integral, numbers.Real, RealNotInt}
    left, right : number or None
    closed : {"left", "right", "both", "neither"}

    Examples
    --------
    >>> import numbers
    >>> batch = NumberInterval(numbers.Integral, 1, None, closed="left")
    >>> batch.is_satisfied_by(64), batch.is_satisfied_by(True)
    (True, False)
    """

    def is_satisfied_by(self, val):
        if isinstance(val, bool | np.bool_):
            return False
        return super().is_satisfied_by(val)

    def __str__(self):
        # "an int ... (not a bool)": the case users hit (batch_size=True)
        text = super().__str__()
        return f"{text} (not a bool)" if self.type is numbers.Integral else text


def refuse_bools(constraints):
    """A copy of a ``_parameter_constraints`` dict whose numeric intervals refuse bools.

    Intervals of numbers (and the integer seeds of ``"random_state"``) refuse ``True`` and
    ``False``; every other constraint is kept as it is.

    Parameters
    ----------
    constraints : dict
        ``{parameter: [constraint, ...]}`` as scikit-learn estimators declare them.

    Returns
    -------
    constraints : dict

    Examples
    --------
    >>> import numbers
    >>> from sklearn.utils._param_validation import Interval
    >>> checked = refuse_bools({"n": [Interval(numbers.Integral, 1, None, closed="left")]})
    >>> checked["n"][0].is_satisfied_by(False)
    False
    """
    converted = {}
    for name, options in constraints.items():
        if isinstance(options, list) and "random_state" in options:
            # scikit-learn's "random_state" is an int interval too: random_state=True is not
            # a seed of 1
            position = options.index("random_state")
            options = [
                *options[:position],
                NumberInterval(numbers.Integral, 0, 2**32 - 1, closed="both"),
                np.random.RandomState,
                None,
                *options[position + 1 :],
            ]
        if isinstance(options, list):
            options = [
                NumberInterval(c.type, c.left, c.right, closed=c.closed)
                if type(c) is Interval
                else c
                for c in options
            ]
        converted[name] = options
    return converted
