"""The contenders of a comparison: :data:`METHODS` and the settings of their networks.

Every neural method trains the same MLP for the same number of epochs
(:class:`NetSettings`); only the loss, the schedule or the sampler differs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from imblearn.over_sampling import SMOTE, RandomOverSampler
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from ..ensemble import CrossFitEnsembleClassifier
from ..l2rw import L2RWClassifier
from ..ldam_drw import LDAMDRWClassifier
from ..meta_weight_net import MetaWeightNetClassifier
from .data import ComparisonData

__all__ = ["METHODS", "Method", "NetSettings"]


@dataclass(frozen=True)
class NetSettings:
    """Network and budget shared by every neural method of a run.

    The defaults are those of ``ldam-sklearn compare`` without arguments:
    all 16 methods train on long-tailed MNIST-1D in about two minutes on two
    CPU cores, and 200 epochs (rather than 100) let LDAM-DRW's lead over ERM
    stand clear of the seed-to-seed spread (about 3.5 points of balanced
    accuracy, measured over 3 seeds). The optimiser and learning-rate
    schedule are those of Cao et al. [1]_ (SGD with momentum, warm-up and
    step decay), the package defaults.

    Parameters
    ----------
    epochs : int, default=200
        ``max_epochs`` of every network.
    hidden : tuple of int, default=(256, 256)
        Hidden layer widths of the MLP.
    batch_size : int, default=128
        Rows per mini-batch.
    lr : float, default=0.1
        Base learning rate.
    device : str, default="auto"
        Where the networks train.

    Attributes
    ----------
    epochs : int, default=200
        ``max_epochs`` of every network.
    hidden : tuple of int, default=(256, 256)
        Hidden layer widths of the MLP.
    batch_size : int, default=128
    lr : float, default=0.1
        Base learning rate (SGD with momentum, the package default).
    device : str, default="auto"
        Where the networks train.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    >>> from ldam_sklearn.compare import NetSettings
    >>> params = NetSettings(epochs=2, hidden=(16,)).estimator_params(seed=0)
    >>> params["max_epochs"], params["module__hidden_layer_sizes"], params["random_state"]
    (2, (16,), 0)
    """

    epochs: int = 200
    hidden: tuple[int, ...] = (256, 256)
    batch_size: int = 128
    lr: float = 0.1
    device: str = "auto"

    def estimator_params(self, seed: int) -> dict[str, Any]:
        """Keyword arguments of a package estimator trained with these settings."""
        return {
            "max_epochs": self.epochs,
            "module__hidden_layer_sizes": self.hidden,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "device": self.device,
            "random_state": seed,
        }


#: ``build(settings, seed, class_counts) -> steps``: see :class:`Method`.
_Builder = Callable[[NetSettings, int, np.ndarray], list]


@dataclass(frozen=True)
class Method:
    """One contender: how to build its pipeline steps after the preprocessing.

    :data:`METHODS` holds LDAM-DRW and the baselines it is compared with by
    Cao et al. [1]_, learning to reweight examples of Ren et al. [2]_,
    imbalanced-learn's samplers [3]_ in front of an ERM network, logit
    adjustment [4]_ and two non-neural references.

    Parameters
    ----------
    label : str
        Name shown in the table and the plot.
    build : callable
        ``build(settings, seed, class_counts) -> list of steps``.
    neural : bool, default=True
        Whether the classifier is a network trained with ``settings``.
    skip : callable or None, default=None
        ``skip(data, class_counts) -> reason or None``.

    Attributes
    ----------
    label : str
        Name shown in the table and the plot.
    build : callable
        ``build(settings, seed, class_counts) -> list of steps``: an optional
        imbalanced-learn sampler followed by the classifier.
    neural : bool
        Whether the classifier is a network trained with ``settings``.
    skip : callable or None
        ``skip(data, class_counts) -> reason or None``: why the method cannot
        run on this data.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.
    .. [2] M. Ren, W. Zeng, B. Yang and R. Urtasun, "Learning to Reweight
       Examples for Robust Deep Learning", ICML 2018, arXiv:1803.09050.
    .. [3] G. Lemaître, F. Nogueira and C. K. Aridas, "Imbalanced-learn: A
       Python Toolbox to Tackle the Curse of Imbalanced Datasets in Machine
       Learning", JMLR 18(17), 2017.
    .. [4] A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit and
       S. Kumar, "Long-tail learning via logit adjustment", ICLR 2021,
       arXiv:2007.07314.

    Examples
    --------
    >>> import numpy as np
    >>> from ldam_sklearn.compare import METHODS, NetSettings
    >>> method = METHODS["ros"]
    >>> steps = method.build(NetSettings(epochs=1), 0, np.array([50, 5]))
    >>> method.label, [type(step).__name__ for step in steps]
    ('ERM + RandomOverSampler', ['RandomOverSampler', 'LDAMDRWClassifier'])

    A method of one's own takes the same form:

    >>> from sklearn.dummy import DummyClassifier
    >>> from ldam_sklearn.compare import Method
    >>> prior = Method("Prior", lambda settings, seed, counts: [DummyClassifier()], neural=False)
    >>> prior.build(NetSettings(), 0, np.array([50, 5]))
    [DummyClassifier()]
    """

    label: str
    build: _Builder
    neural: bool = True
    skip: Callable[[ComparisonData, np.ndarray], str | None] | None = None


def _ldam_drw(
    loss: str,
    schedule: str = "none",
    sampler: Callable[[int, np.ndarray], Any] | None = None,
    recipe: str = "paper",
) -> _Builder:
    """An :class:`LDAMDRWClassifier` with this loss and schedule, after an optional sampler.

    The rows of Cao et al.'s ablation train with ``recipe="paper"``: the
    default recipe's post-hoc logit adjustment would turn "ERM" into a
    re-balanced method and blur every difference the ablation is about.
    """

    def build(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
        net = LDAMDRWClassifier(
            loss=loss, schedule=schedule, recipe=recipe, **settings.estimator_params(seed)
        )
        return [net] if sampler is None else [sampler(seed, class_counts), net]

    return build


def _ros(seed: int, class_counts: np.ndarray) -> RandomOverSampler:
    return RandomOverSampler(random_state=seed)


def _smote(seed: int, class_counts: np.ndarray) -> SMOTE:
    # SMOTE interpolates between a sample and its k nearest same-class
    # neighbours; the rarest long-tailed classes have fewer than the default 5.
    rarest = int(class_counts.min())
    k_neighbors = min(5, rarest - 1)
    if k_neighbors < 5:
        warnings.warn(
            f"SMOTE's k_neighbors lowered from 5 to {k_neighbors}: the rarest training "
            f"class has {rarest} samples",
            UserWarning,
            stacklevel=2,
        )
    return SMOTE(k_neighbors=k_neighbors, random_state=seed)


def _smote_skip(data: ComparisonData, class_counts: np.ndarray) -> str | None:
    if class_counts.min() < 2:
        return "SMOTE needs at least 2 training samples of every class"
    return None


def _l2rw(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
    return [L2RWClassifier(meta_size=10, **settings.estimator_params(seed))]


def _mwnet(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
    return [MetaWeightNetClassifier(meta_size=10, **settings.estimator_params(seed))]


def _ensemble(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
    # At its own defaults (five 40-epoch LDAM-DRW members): the estimator a
    # user gets, not the run's --epochs.
    return [CrossFitEnsembleClassifier(random_state=seed)]


def _logreg(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
    return [LogisticRegression(class_weight="balanced", max_iter=1000, random_state=seed)]


def _hgb(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
    return [HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)]


def _hgb_skip(data: ComparisonData, class_counts: np.ndarray) -> str | None:
    # Densifying a TF-IDF matrix can take more memory than the machine has;
    # skipping is predictable, and the linear reference covers text well.
    if data.sparse:
        return "HistGradientBoosting needs dense input; skipped on sparse TF-IDF features"
    return None


#: Method name -> :class:`Method`, in the order of the table.
METHODS: dict[str, Method] = {
    "erm": Method("ERM", _ldam_drw("ce")),
    "class_weighted": Method("Class-weighted CE", _ldam_drw("ce", "reweight")),
    "ros": Method("ERM + RandomOverSampler", _ldam_drw("ce", sampler=_ros)),
    "smote": Method("ERM + SMOTE", _ldam_drw("ce", sampler=_smote), skip=_smote_skip),
    "focal": Method("Focal", _ldam_drw("focal")),
    "logit_adjusted": Method("Logit-adjusted", _ldam_drw("logit_adjusted")),
    "ldam": Method("LDAM", _ldam_drw("ldam")),
    "ce_drw": Method("CE-DRW", _ldam_drw("ce", "drw")),
    "ce_drs": Method("CE-DRS", _ldam_drw("ce", "drs")),
    "ldam_drw": Method("LDAM-DRW", _ldam_drw("ldam", "drw")),
    "default": Method("LDAM-DRW, default recipe", _ldam_drw("ldam", "drw", recipe="tabular")),
    "ensemble": Method("LDAM-DRW x5, cross-fitted ensemble", _ensemble, neural=False),
    "l2rw": Method("L2RW", _l2rw),
    "mwnet": Method("MW-Net", _mwnet),
    "logreg": Method("LogReg (balanced)", _logreg, neural=False),
    "hgb": Method("HistGB (balanced)", _hgb, neural=False, skip=_hgb_skip),
}
