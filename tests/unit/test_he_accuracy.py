"""Accuracy on scikit-learn's bundled datasets split across three nodes, computed as the nodes and the exchange
compute it (partial aggregates in the exact fixed-point codec, encrypted under the consumer's public context, added without a secret key,
decrypted by the consumer): every statistic within 1e-6 relative of numpy on the pooled rows, logits within 1e-3."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression

from privacy import aggregation, fixedpoint, he

SPLITS = (0.25, 0.6)  # three nodes of unequal size


@pytest.fixture(scope="module")
def keys():
    return he.ConsumerKeys()


def _nodes(data: np.ndarray) -> list[np.ndarray]:
    cuts = [int(len(data) * s) for s in SPLITS]
    return np.split(data, cuts)


def _encrypted_statistics(keys, plan, pooled, names):
    context = keys.public_context()
    ciphertexts = []
    for part in _nodes(pooled):
        table = {name: part[:, i] for i, name in enumerate(names)}
        ciphertexts.append(he.encrypt_vector(context, fixedpoint.encode(aggregation.partials(plan, table))))
    digits = keys.decrypt(he.add_ciphertexts(context, ciphertexts))
    return aggregation.finish(plan, fixedpoint.decode(digits, aggregation.layout(plan).size))


@pytest.mark.parametrize("loader", [load_diabetes, load_breast_cancer], ids=["diabetes", "breast-cancer"])
def test_encrypted_statistics_over_three_nodes_match_numpy_on_the_pooled_rows(keys, loader):
    bundle = loader()
    target = bundle.target.astype(float)
    pooled = np.column_stack([bundle.data, target])
    names = [f"f{i}" for i in range(bundle.data.shape[1])] + ["target"]
    edges = tuple(np.unique(np.quantile(target, [0, 0.25, 0.5, 0.75, 1.0])))
    if len(edges) < 3:  # a binary target: one bin per class
        edges = (target.min(), (target.min() + target.max()) / 2, target.max())
    # CKKS error follows the largest value in a ciphertext, so columns are put in jobs of similar scale (within
    # three orders of magnitude), and a first encrypted pass learns the means a second pass sums around — the
    # use docs/privacy.md describes. Breast-cancer features span ten orders of magnitude.
    bands: dict[int, list[int]] = {}
    for index in range(pooled.shape[1]):
        bands.setdefault(int(np.floor(np.log10(pooled[:, index].std()) / 3)), []).append(index)
    for indexes in bands.values():
        columns = tuple(names[i] for i in indexes)
        histogram = aggregation.Histogram("target", edges) if "target" in columns else None
        plan = aggregation.StatisticsPlan(columns=columns, histogram=histogram, min_group_size=5)
        first = _encrypted_statistics(keys, plan, pooled, names)
        plan = aggregation.StatisticsPlan(columns=columns, histogram=histogram, min_group_size=5,
                                          shifts=tuple((c, first.columns[c].mean) for c in columns))
        stats = _encrypted_statistics(keys, plan, pooled, names)
        assert stats.count == len(pooled)
        for index in indexes:
            column, name = pooled[:, index], names[index]
            tolerance = 1e-6 * np.abs(column).max()  # means of centred features are ~0: relative to their scale
            assert stats.columns[name].sum == pytest.approx(column.sum(), rel=1e-6, abs=len(column) * tolerance)
            assert stats.columns[name].mean == pytest.approx(column.mean(), rel=1e-6, abs=tolerance)
            assert stats.columns[name].variance == pytest.approx(column.var(), rel=1e-6)
        if histogram is not None:
            assert list(stats.histogram) == list(np.histogram(target, bins=edges)[0])


def test_encrypted_logistic_scores_match_the_plaintext_model(keys):
    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    model = LogisticRegression(max_iter=2000).fit(x, data.target)
    weights = keys.encrypt_weights(model.coef_[0], float(model.intercept_[0]))
    context = keys.public_context()
    partial = [he.encrypted_dot(context, weights, part) for part in _nodes(x)]
    logits = np.concatenate([keys.decrypt_scores(p)[:len(part)] for p, part in zip(partial, _nodes(x))])
    assert np.max(np.abs(logits - model.decision_function(x))) < 1e-3
