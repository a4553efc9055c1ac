"""The federated core (privacy.federated) and its accountant: FedAvg over three nodes matches centralized
scikit-learn on bundled data, IID and not; sums of encrypted updates give the same model; DP noise and ε."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from privacy import accountant, federated, he
from privacy.dp import DPError
from privacy.federated import LINEAR, FederatedError, TrainingConfig

NODES = 3
LOGISTIC_CONFIG = TrainingConfig(rounds=30, local_epochs=5, learning_rate=0.5, l2=1e-3)
LINEAR_CONFIG = TrainingConfig(task=LINEAR, rounds=60, local_epochs=5, learning_rate=0.3, l2=0.0)


@pytest.fixture(scope="module")
def cancer():
    features, labels = load_breast_cancer(return_X_y=True)
    return train_test_split(features, labels, test_size=0.25, random_state=0, stratify=labels)


@pytest.fixture(scope="module")
def diabetes():
    features, targets = load_diabetes(return_X_y=True)
    return train_test_split(features, targets, test_size=0.25, random_state=0)


def _iid(features, labels, seed=0):
    order = np.random.default_rng(seed).permutation(len(labels))
    return [(features[part], labels[part]) for part in np.array_split(order, NODES)]


def _by_label(features, labels):
    """Non-IID: rows sorted by label before splitting, so one node holds mostly malignant, another benign."""
    order = np.argsort(labels, kind="stable")
    return [(features[part], labels[part]) for part in np.array_split(order, NODES)]


def _centralized_accuracy(cancer) -> float:
    x_train, x_test, y_train, y_test = cancer
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(max_iter=10_000).fit(scaler.transform(x_train), y_train)
    return model.score(scaler.transform(x_test), y_test)


@pytest.mark.parametrize("split", [_iid, _by_label], ids=["iid", "non-iid"])
def test_fedavg_over_three_nodes_is_within_a_point_of_centralized_logistic_regression(cancer, split):
    x_train, x_test, y_train, y_test = cancer
    partitions = split(x_train, y_train)
    if split is _by_label:
        shares = [float(np.mean(y)) for _, y in partitions]
        assert min(shares) < 0.1 and max(shares) > 0.9  # the split really is skewed
    model = federated.train(partitions, LOGISTIC_CONFIG)
    assert federated.accuracy(model, x_test, y_test) >= _centralized_accuracy(cancer) - 0.01


def test_fedavg_linear_regression_is_within_0_02_r2_of_centralized(diabetes):
    x_train, x_test, y_train, y_test = diabetes
    model = federated.train(_iid(x_train, y_train), LINEAR_CONFIG)
    central = r2_score(y_test, LinearRegression().fit(x_train, y_train).predict(x_test))
    assert abs(federated.r2(model, x_test, y_test) - central) <= 0.02


def test_the_pooled_standardizer_equals_the_one_of_all_rows_without_any_node_revealing_its_own(cancer):
    x_train, _, y_train, _ = cancer
    partitions = _iid(x_train, y_train)
    summed = np.sum([federated.moments(x) for x, _ in partitions], axis=0)
    standardizer = federated.Standardizer.from_moments(summed)
    np.testing.assert_allclose(standardizer.mean, x_train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(standardizer.std, x_train.std(axis=0), rtol=1e-9)


def test_fedavg_weights_nodes_by_their_rows():
    small, large = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(federated.fedavg([(small, 1), (large, 3)]), [0.25, 0.75])


def test_summing_encrypted_updates_gives_the_plain_fedavg_model(cancer):
    """What the exchange does each round: add the nodes' ciphertexts; only the consumer decrypts the sum."""
    x_train, _, y_train, _ = cancer
    keys = he.ConsumerKeys()
    context = keys.public_context()
    partitions = _iid(x_train, y_train)
    standardizer = federated.Standardizer.from_moments(np.sum([federated.moments(x) for x, _ in partitions], axis=0))
    local = [(standardizer.apply(x), y) for x, y in partitions]
    plain = encrypted = federated.initial_theta(x_train.shape[1])
    for _ in range(5):
        plain = federated.fedavg([(federated.local_update(plain, x, y, LOGISTIC_CONFIG), len(y)) for x, y in local])
        ciphertexts = [he.encrypt_vector(context, federated.encode(
            federated.local_update(encrypted, x, y, LOGISTIC_CONFIG), len(y))) for x, y in local]
        encrypted, rows = federated.decode(keys.decrypt(he.add_ciphertexts(context, ciphertexts)))
        assert rows == len(y_train)
    np.testing.assert_allclose(encrypted, plain, atol=1e-4)


def test_dp_clips_each_change_and_adds_noise_of_multiplier_times_clip():
    x = np.random.default_rng(1).normal(size=(200, 4))
    y = (x[:, 0] > 0).astype(float)
    theta = np.zeros(5)
    clipped = TrainingConfig(rounds=1, local_epochs=50, learning_rate=1.0, clip=0.5)
    assert np.linalg.norm(federated.local_update(theta, x, y, clipped) - theta) == pytest.approx(0.5)
    noisy = TrainingConfig(rounds=1, local_epochs=1, learning_rate=1e-9, clip=0.5, noise_multiplier=2.0)
    draws = np.array([federated.local_update(theta, x, y, noisy) for _ in range(400)])  # OpenDP's sampler
    assert draws.std() == pytest.approx(1.0, rel=0.1)  # σ = 2.0 × 0.5


def test_more_noise_or_fewer_rounds_spend_less_epsilon_and_the_budget_inverse_holds():
    assert accountant.fedavg_epsilon(4.0, 20) < accountant.fedavg_epsilon(2.0, 20)
    assert accountant.fedavg_epsilon(4.0, 10) < accountant.fedavg_epsilon(4.0, 20)
    multiplier = accountant.noise_for_budget(1.0, 20)
    assert accountant.fedavg_epsilon(multiplier, 20) <= 1.0 < accountant.fedavg_epsilon(multiplier * 0.99, 20)
    with pytest.raises(DPError):
        accountant.fedavg_epsilon(0.0, 20)


@pytest.mark.parametrize("bad", [dict(task="tree"), dict(rounds=0), dict(learning_rate=0), dict(noise_multiplier=1.0),
                                 dict(clip=-1.0)])
def test_a_training_configuration_out_of_range_is_refused(bad):
    with pytest.raises(FederatedError):
        TrainingConfig(**bad)


def test_bad_partitions_are_refused_with_what_is_wrong():
    theta = np.zeros(3)
    with pytest.raises(FederatedError, match="labels 0 or 1"):
        federated.local_update(theta, np.ones((4, 2)), np.array([0, 1, 2, 1]), LOGISTIC_CONFIG)
    with pytest.raises(FederatedError, match="features"):
        federated.local_update(theta, np.ones((4, 3)), np.zeros(4), LOGISTIC_CONFIG)
    with pytest.raises(FederatedError, match="finite"):
        federated.moments(np.array([[1.0, np.nan]]))
    with pytest.raises(FederatedError, match="no node contributed"):
        federated.decode(np.zeros(4))


def test_contribution_shares_reward_only_providers_whose_absence_hurts():
    from client.training import shares

    assert shares({"a": 0.03, "b": 0.01, "c": -0.02}) == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.0})
    assert shares({"a": -0.01, "b": 0.0}) == {"a": 0.5, "b": 0.5}  # nobody's absence hurt: equal shares


def test_contributions_without_validation_rows_are_refused_before_anything_is_submitted():
    from client.training import train

    class Unreachable:
        exchange = None  # any call would fail: the check comes first

    with pytest.raises(ValueError, match="validation"):
        train(Unreachable(), "grt_x", ["ast_x"], features=["a"], label="y", rows=1, contribution=True)


@pytest.fixture(scope="module")
def synthetic():
    from bench import privacy_utility_fl

    return privacy_utility_fl.split(60_000)


@pytest.mark.parametrize(("epsilon", "points"), [(3.0, 0.02), (1.0, 0.04)])
def test_dp_training_on_60000_rows_over_three_nodes_is_within_the_issues_points_of_the_training_without_dp(
        synthetic, epsilon, points):
    from bench import privacy_utility_fl

    baseline, private = privacy_utility_fl.accuracies(synthetic, (epsilon,))
    assert baseline >= 0.72  # the task is learnable, and not trivially
    assert private[epsilon] >= baseline - points


def test_one_record_moves_a_nodes_private_release_by_at_most_root_2_times_the_clip():
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-1, 1, size=(50, 3)) * 5, rng.integers(0, 2, 50).astype(float)
    config = TrainingConfig(rounds=1, local_epochs=1, clip=0.7, noise_multiplier=1.0)
    theta = rng.normal(size=4)
    everyone = federated.private_encode(federated.clipped_gradient_sum(theta, x, y, config), 50, 0.7)
    for left_out in range(50):
        keep = np.arange(50) != left_out
        without = federated.private_encode(federated.clipped_gradient_sum(theta, x[keep], y[keep], config), 49, 0.7)
        assert np.linalg.norm(everyone - without) <= np.sqrt(2) * 0.7 + 1e-12
    # a row whose gradient is longer than the clip reaches the bound: the sensitivity is tight
    assert max(np.linalg.norm(everyone - federated.private_encode(federated.clipped_gradient_sum(
        theta, x[np.arange(50) != i], y[np.arange(50) != i], config), 49, 0.7)) for i in range(50)) == pytest.approx(
        np.sqrt(2) * 0.7)


def test_each_node_adds_z_c_over_root_q_so_that_a_quorums_sum_carries_the_central_noise():
    config = TrainingConfig(rounds=1, local_epochs=1, clip=0.5, noise_multiplier=4.0)
    sigma = federated.node_noise_scale(config, quorum=2)
    assert sigma == pytest.approx(4.0 * 0.5 / np.sqrt(2))
    summed = federated.gaussian_noise(4000, sigma) + federated.gaussian_noise(4000, sigma)
    assert summed.std() == pytest.approx(4.0 * 0.5, rel=0.05)
    with pytest.raises(FederatedError, match="at least 2"):
        federated.node_noise_scale(config, quorum=1)


def test_the_accountant_composes_one_gaussian_mechanism_of_multiplier_z_over_root_2_per_release():
    import dp_accounting
    from dp_accounting.rdp import rdp_privacy_accountant

    reference = rdp_privacy_accountant.RdpAccountant()
    reference.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(6.0 / np.sqrt(2)), 40))
    assert accountant.fedavg_epsilon(6.0, 40) == pytest.approx(reference.get_epsilon(1e-5))


def test_a_private_step_descends_the_noisy_mean_gradient_with_the_noisy_count():
    config = TrainingConfig(rounds=1, local_epochs=1, learning_rate=0.5, l2=0.1, clip=2.0, noise_multiplier=1.0)
    theta = np.array([1.0, -1.0, 0.5])
    step, rows = federated.private_step(theta, np.array([10.0, 20.0, 30.0, 200.0]), config)
    assert rows == 100.0
    np.testing.assert_allclose(step, theta - 0.5 * (np.array([0.1, 0.2, 0.3]) + 0.1 * np.array([1.0, -1.0, 0.0])))
    assert federated.private_step(theta, np.array([0.0, 0.0, 0.0, -5.0]), config)[1] == 1.0  # never below one row
