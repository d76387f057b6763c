"""Meta-estimators: estimators built around other skastro estimators.

- :class:`KFoldEnsemble`: K members of any skastro embedder or classifier, each trained on
  its own folds (or all images with its own seed), their outputs aligned and averaged.
- :class:`FaintCalibratedClassifier`: a label-free two-class classifier fitted on the bright
  images, with faint images scored from faded copies of the bright ones.
"""

from skastro.meta._faint_calibration import FaintCalibratedClassifier
from skastro.meta._kfold_ensemble import KFoldEnsemble, generalized_procrustes

__all__ = ["FaintCalibratedClassifier", "KFoldEnsemble", "generalized_procrustes"]
