"""Information-theoretic estimators on samples: pure functions on tensors.

k-NN family (exact neighbours, see :mod:`.neighbors`): :func:`entropy`,
:func:`joint_entropy`, :func:`conditional_entropy`, :func:`mutual_information`,
:func:`jensen_shannon`, :func:`sliced_jensen_shannon`. Gaussian plug-in family:
:mod:`.gaussian`. Mode coverage of the 2-D mixture benchmarks: :mod:`.coverage`. Sample quality
(:func:`precision_recall`, :func:`density_coverage`): :mod:`.quality`. Data copying
(:func:`data_copying`, Meehan et al. 2020): :mod:`.copying`. Bias-corrected entropies
(:func:`weighted_entropy`, :func:`extrapolated_entropy`): :mod:`.weighted`. Standard errors
(every estimator's ``return_se``, which makes each value returned an :class:`Estimate`
``(value, se)``; :func:`flatten_estimates` for ``<key>_se`` dicts): :mod:`.resampling`. A
classifier JSD for high dimension (:func:`classifier_jensen_shannon`, or
``jensen_shannon(method="classifier")``): :mod:`.classifier`. Tensor-core candidate
products for the exact search on CUDA (:func:`proposal_precision`): :mod:`.neighbors`. The
exact JSD of the n-gram frequencies of two sets of token sequences
(:func:`ngram_jensen_shannon`): :mod:`.ngram`.
"""

from . import coverage, gaussian
from ._inputs import label_entropy
from .classifier import classifier_jensen_shannon
from .copying import DataCopying, data_copying
from .knn import (
    SlicedJensenShannon,
    compare_samples,
    conditional_entropy,
    differentiable_entropy,
    entropy,
    jensen_shannon,
    joint_entropy,
    mutual_information,
    sliced_jensen_shannon,
)
from .neighbors import proposal_precision
from .ngram import ngram_jensen_shannon
from .quality import density_coverage, precision_recall
from .resampling import Estimate, flatten_estimates
from .weighted import extrapolated_entropy, weighted_entropy

__all__ = [
    "DataCopying",
    "Estimate",
    "SlicedJensenShannon",
    "classifier_jensen_shannon",
    "compare_samples",
    "conditional_entropy",
    "coverage",
    "data_copying",
    "density_coverage",
    "differentiable_entropy",
    "entropy",
    "extrapolated_entropy",
    "flatten_estimates",
    "gaussian",
    "jensen_shannon",
    "joint_entropy",
    "label_entropy",
    "mutual_information",
    "ngram_jensen_shannon",
    "precision_recall",
    "proposal_precision",
    "sliced_jensen_shannon",
    "weighted_entropy",
]
