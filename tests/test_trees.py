"""The gradient-boosted trees cross-fitted beside the packed network."""

import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier

from ldam_sklearn.posthoc import member_folds
from ldam_sklearn.trees import fit_tree_members, tree_log_proba


def test_each_row_is_scored_by_the_member_that_did_not_train_on_it():
    X, y = make_classification(
        300, 6, n_classes=3, weights=[0.8, 0.15, 0.05], n_informative=4, random_state=0
    )
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    folds = member_folds(y, None, 3, seed=0)
    folds[:5] = -1  # rows that train every member
    members, out_of_fold = fit_tree_members(X, y, weights, folds, 3, random_state=0)
    assert len(members) == 3
    for member, tree in enumerate(members):
        rows = folds != member
        alone = HistGradientBoostingClassifier(class_weight="balanced", random_state=0)
        alone.fit(X[rows], y[rows], sample_weight=weights[rows])
        np.testing.assert_array_equal(tree.predict_proba(X), alone.predict_proba(X))
        held = folds == member
        np.testing.assert_allclose(out_of_fold[held], np.log(tree.predict_proba(X[held])))
    mean = tree_log_proba(members, X)
    np.testing.assert_allclose(mean, np.mean([np.log(t.predict_proba(X)) for t in members], axis=0))
    np.testing.assert_allclose(out_of_fold[:5], mean[:5])
