import json
import warnings

import numpy as np
import pytest

from phishlens.training.evaluation.metrics import binary_metrics, roc_auc


def test_perfect_predictions():
    m = binary_metrics([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2], 0.5)
    assert m["f1"] == 1.0 and m["precision"] == 1.0 and m["recall"] == 1.0
    assert m["roc_auc"] == 1.0 and m["fpr"] == 0.0 and m["accuracy"] == 1.0
    assert (m["n"], m["n_pos"], m["n_neg"]) == (4, 2, 2)


def test_known_values():
    y = [1, 1, 1, 0, 0, 0, 0]
    p = [0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4]
    m = binary_metrics(y, p, 0.5)
    # tp=2 fn=1 fp=1 tn=3
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (2, 1, 1, 3)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 4)
    assert m["accuracy"] == pytest.approx(5 / 7)
    from sklearn.metrics import roc_auc_score

    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))


def test_threshold_is_inclusive():
    assert binary_metrics([1], [0.5], 0.5)["tp"] == 1


def test_phishing_only_source_has_no_fpr_or_auc():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = binary_metrics([1, 1, 1, 1], [0.9, 0.7, 0.2, 0.6], 0.5)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1))
    assert m["fpr"] is None and m["roc_auc"] is None
    assert m["n_neg"] == 0 and m["precision"] == 1.0


def test_legit_only_and_nothing_predicted():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = binary_metrics([0, 0, 0], [0.1, 0.2, 0.3], 0.5)
        z = binary_metrics([1, 1, 0], [0.1, 0.2, 0.3], 0.5)
        e = binary_metrics([], [], 0.5)
    assert m["f1"] is None and m["recall"] is None and m["precision"] is None and m["roc_auc"] is None
    assert m["fpr"] == 0.0 and m["accuracy"] == 1.0
    assert z["precision"] is None and z["f1"] == 0.0 and z["recall"] == 0.0
    assert e["n"] == 0 and e["accuracy"] is None and e["f1"] is None
    json.dumps([m, z, e])  # plain Python values


def test_auc_ties_match_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.round(rng.random(200), 1)  # many ties
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p))


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        binary_metrics([1, 0], [0.5], 0.5)
    with pytest.raises(ValueError):
        binary_metrics([1, 0], [0.5, np.nan], 0.5)
    with pytest.raises(ValueError):
        binary_metrics([2, 0], [0.5, 0.1], 0.5)
