"""Imbalance-aware deep classifiers for scikit-learn, built on skorch.

``LDAMDRWClassifier`` (Cao et al., NeurIPS 2019), ``L2RWClassifier``
(Ren et al., ICML 2018) and ``MetaWeightNetClassifier`` (Shu et al.,
NeurIPS 2019) are scikit-learn estimators that train PyTorch
networks on CUDA when present and on the CPU otherwise.
``CrossFitEnsembleClassifier`` averages networks trained on k-fold splits
and chooses their post-hoc logit adjustment on out-of-fold rows.
"""

from ._version import __version__
from .ensemble import CrossFitEnsembleClassifier
from .l2rw import L2RWClassifier
from .ldam_drw import LDAMDRWClassifier
from .meta_reweighting import l2rw_example_weights
from .meta_weight_net import MetaWeightNetClassifier

__all__ = [
    "CrossFitEnsembleClassifier",
    "L2RWClassifier",
    "LDAMDRWClassifier",
    "MetaWeightNetClassifier",
    "l2rw_example_weights",
    "__version__",
]
