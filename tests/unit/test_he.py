"""The CKKS facade: statistics summed under encryption, no secret key leaves, packed scoring, chunking."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tenseal as ts
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.aggregation import Condition, GroupBy, Histogram, StatisticsPlan, finish, partials
from privacy.he import (
    PACKED_WEIGHTS,
    VECTOR,
    WEIGHTS,
    BadBundle,
    BadContext,
    BadInput,
    Bundle,
    ConsumerKeys,
    HEError,
    SecretKeyPresent,
    add_ciphertexts,
    encrypt_vector,
    encrypted_dot,
    encrypted_dot_per_row,
    has_secret_key,
    require_public_context,
    sigmoid,
)
from tests.unit.test_aggregation import REGIONS, assert_matches, expected_statistics, split_rows, synthetic_table

SLOTS = 4096
CKKS_RELATIVE = 1e-6


@pytest.fixture(scope="module")
def keys() -> ConsumerKeys:
    return ConsumerKeys()


@pytest.fixture(scope="module")
def rotation_keys() -> ConsumerKeys:
    return ConsumerKeys(galois_keys=True)


@pytest.fixture(scope="module")
def private_context(keys) -> bytes:
    """A context serialized WITH its secret key, as a careless client might send it."""
    return keys._context.serialize(save_secret_key=True)


def _decrypt_sum(keys: ConsumerKeys, vectors: list[np.ndarray]) -> np.ndarray:
    public = keys.public_context()
    return keys.decrypt(add_ciphertexts(public, [encrypt_vector(public, v) for v in vectors]))


# --- statistics end to end -----------------------------------------------------------------------------------


def test_statistics_of_three_nodes_added_under_encryption_match_numpy_on_the_pooled_data(keys):
    table = synthetic_table(np.random.default_rng(5), 9000)
    nodes = split_rows(table, [2500, 6000])
    plan = StatisticsPlan(
        columns=("age", "income", "children"),
        row_filter=(Condition("employed", "==", True),),
        histogram=Histogram("age", (0, 30, 45, 60, 120)),
        group_by=GroupBy("region", REGIONS),
        min_group_size=10,
        shifts={"age": 45.0, "income": 25_000.0},
    )
    public = keys.public_context()
    ciphertexts = [encrypt_vector(public, partials(plan, node)) for node in nodes]  # at each node
    total = add_ciphertexts(public, ciphertexts)  # at the exchange, which holds only the public context
    stats = finish(plan, keys.decrypt(total))  # in the consumer's SDK
    assert_matches(stats, expected_statistics(plan, table), CKKS_RELATIVE)


def test_the_decrypted_sum_is_close_but_never_assumed_exact(keys):
    rng = np.random.default_rng(11)
    vectors = [rng.normal(0.0, 1e3, 100) for _ in range(3)]
    decrypted = _decrypt_sum(keys, vectors)
    np.testing.assert_allclose(decrypted, np.sum(vectors, axis=0), rtol=0, atol=1e-6)


# --- secret keys stay home -----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["keys", "rotation_keys"])
def test_no_serialized_context_that_leaves_consumer_keys_carries_a_secret_key(request, which):
    consumer = request.getfixturevalue(which)
    public = consumer.public_context()
    context = ts.context_from(public)
    assert not context.is_private() and context.is_public()
    assert context.has_galois_keys() == (which == "rotation_keys")
    assert not context.has_relin_keys()
    assert has_secret_key(public) is False
    require_public_context(public)
    ciphertext = Bundle.from_bytes(encrypt_vector(public, [1.0, 2.0])).parts[0]
    with pytest.raises(ValueError, match="secret_key"):
        ts.ckks_vector_from(context, ciphertext).decrypt()


def test_consumer_keys_refuse_to_be_pickled(keys):
    with pytest.raises(TypeError, match="secret key"):
        pickle.dumps(keys)


def test_a_context_serialized_with_its_secret_key_is_detected_and_refused(private_context):
    assert has_secret_key(private_context) is True
    with pytest.raises(SecretKeyPresent):
        require_public_context(private_context)


def test_add_ciphertexts_refuses_a_context_that_carries_a_secret_key(keys, private_context):
    ciphertext = encrypt_vector(keys.public_context(), [1.0, 2.0, 3.0])
    with pytest.raises(SecretKeyPresent):
        add_ciphertexts(private_context, [ciphertext, ciphertext])


@pytest.mark.parametrize("operation", ["encrypt", "score"])
def test_nodes_refuse_a_context_that_carries_a_secret_key(keys, private_context, operation):
    with pytest.raises(SecretKeyPresent):
        if operation == "encrypt":
            encrypt_vector(private_context, [1.0])
        else:
            encrypted_dot(private_context, keys.encrypt_weights([1.0], 0.0), np.ones((2, 1)))


@pytest.mark.parametrize("garbage", [b"", b"not a context", 42])
def test_bytes_that_are_not_a_context_are_rejected(garbage):
    with pytest.raises(BadContext):
        encrypt_vector(garbage, [1.0])


def test_a_bfv_context_is_not_accepted_for_ckks():
    bfv = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=4096, plain_modulus=1032193)
    with pytest.raises(BadContext, match="CKKS"):
        require_public_context(bfv.serialize(save_secret_key=False))


# --- chunking and bundles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("length,chunks", [(1, 1), (SLOTS, 1), (SLOTS + 1, 2), (2 * SLOTS + 5, 3)])
def test_vectors_longer_than_one_ciphertext_are_chunked_and_add_up(keys, length, chunks):
    rng = np.random.default_rng(length)
    vectors = [rng.uniform(-100.0, 100.0, length) for _ in range(3)]
    assert len(Bundle.from_bytes(encrypt_vector(keys.public_context(), vectors[0])).parts) == chunks
    decrypted = _decrypt_sum(keys, vectors)
    assert decrypted.shape == (length,)
    np.testing.assert_allclose(decrypted, np.sum(vectors, axis=0), rtol=0, atol=1e-6)


def test_bundles_of_different_lengths_are_not_added(keys):
    public = keys.public_context()
    with pytest.raises(BadBundle, match="cannot add"):
        add_ciphertexts(public, [encrypt_vector(public, [1.0, 2.0]), encrypt_vector(public, [1.0, 2.0, 3.0])])


def test_a_bundle_of_the_wrong_kind_is_refused(keys):
    weights = keys.encrypt_weights([1.0, 2.0], 0.5)
    with pytest.raises(BadBundle, match="kind"):
        add_ciphertexts(keys.public_context(), [weights])
    with pytest.raises(BadBundle, match="kind"):
        keys.decrypt(weights)


def test_nothing_to_add_is_an_error(keys):
    with pytest.raises(BadBundle, match="nothing"):
        add_ciphertexts(keys.public_context(), [])


@pytest.mark.parametrize("values", [[], [[1.0, 2.0]], [1.0, float("nan")], ["x"]])
def test_empty_nested_or_non_finite_values_are_not_encrypted(keys, values):
    with pytest.raises(BadInput):
        encrypt_vector(keys.public_context(), values)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([VECTOR, WEIGHTS, PACKED_WEIGHTS]),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.lists(st.binary(max_size=40), min_size=1, max_size=5),
    st.data(),
)
def test_bundles_round_trip_and_any_truncation_or_extension_is_detected(kind, length, parts, data):
    bundle = Bundle(kind, length, tuple(parts))
    wire = bundle.to_bytes()
    assert Bundle.from_bytes(wire) == bundle
    cut = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
    with pytest.raises(BadBundle):
        Bundle.from_bytes(wire[:cut])
    with pytest.raises(BadBundle):
        Bundle.from_bytes(wire + b"\x00")


@pytest.mark.parametrize("wire", [b"ABCD" + bytes(14), b"PDXH\x02\x01" + bytes(12), b"PDXH\x01\x09" + bytes(12),
                                  b"PDXH\x01\x01" + bytes(12)])
def test_bundles_with_a_bad_magic_version_kind_or_no_parts_are_rejected(wire):
    with pytest.raises(BadBundle):
        Bundle.from_bytes(wire)


def test_ciphertexts_that_do_not_fit_each_other_are_reported_as_bad_bundles(keys):
    public = keys.public_context()
    short = Bundle.from_bytes(encrypt_vector(public, [1.0]))
    long_ = Bundle.from_bytes(encrypt_vector(public, [1.0, 2.0]))
    forged = Bundle(VECTOR, 2, long_.parts).to_bytes(), Bundle(VECTOR, 2, short.parts).to_bytes()
    with pytest.raises(BadBundle, match="do not fit"):
        add_ciphertexts(public, list(forged))
    with pytest.raises(BadBundle):
        add_ciphertexts(public, [Bundle(VECTOR, 1, (b"junk",)).to_bytes()])


# --- encrypted scoring ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_and_features():
    rng = np.random.default_rng(30)
    features = rng.normal(0.0, 1.0, (10_000, 30))
    weights = rng.normal(0.0, 0.5, 30)
    return weights, -0.25, features


def test_packed_encrypted_scoring_of_10000_rows_by_30_features_matches_plaintext_logits(keys, model_and_features):
    weights, bias, features = model_and_features
    encrypted_weights = keys.encrypt_weights(weights, bias)  # consumer
    scores = encrypted_dot(keys.public_context(), encrypted_weights, features)  # provider node
    assert len(Bundle.from_bytes(scores).parts) == 3  # 4096 rows per ciphertext
    logits = features @ weights + bias
    np.testing.assert_allclose(keys.decrypt_scores(scores), logits, rtol=0, atol=1e-3)
    np.testing.assert_allclose(keys.decrypt_scores(scores, logistic=True), sigmoid(logits), rtol=0, atol=1e-3)


def test_per_row_reference_scoring_agrees_with_the_plaintext_logits(rotation_keys, model_and_features):
    weights, bias, features = model_and_features
    rows = features[:6]
    encrypted_weights = rotation_keys.encrypt_weights(weights, bias, packed=True)
    scores = encrypted_dot_per_row(rotation_keys.public_context(), encrypted_weights, rows)
    assert len(Bundle.from_bytes(scores).parts) == len(rows)
    np.testing.assert_allclose(rotation_keys.decrypt_scores(scores), rows @ weights + bias, rtol=0, atol=1e-3)


def test_scores_carry_no_systematic_error_from_the_rescaling_prime(keys):
    # A product rescales by a prime q ≈ 2^40, not by 2^40: uncorrected, every score is 1.3e-7 too large.
    features = np.random.default_rng(31).choice([-1.0, 1.0], (4096, 2))
    weights, bias = np.array([2.0**29, -(2.0**28)]), 2.0**27
    scores = keys.decrypt_scores(encrypted_dot(keys.public_context(), keys.encrypt_weights(weights, bias), features))
    np.testing.assert_allclose(scores, features @ weights + bias, rtol=0, atol=1e-9 * 2.0**30)


def test_per_row_scoring_needs_a_context_with_galois_keys(keys):
    packed = keys.encrypt_weights([1.0, 2.0], 0.0, packed=True)
    with pytest.raises(BadContext, match="Galois"):
        encrypted_dot_per_row(keys.public_context(), packed, np.ones((1, 2)))


def test_scoring_refuses_features_whose_width_differs_from_the_weights(keys):
    encrypted_weights = keys.encrypt_weights([1.0, 2.0, 3.0], 0.0)
    with pytest.raises(BadInput, match=r"\(rows, 3\)"):
        encrypted_dot(keys.public_context(), encrypted_weights, np.ones((5, 4)))


def test_scoring_refuses_weights_in_the_wrong_layout(keys):
    packed = keys.encrypt_weights([1.0, 2.0], 0.0, packed=True)
    with pytest.raises(BadBundle, match="kind"):
        encrypted_dot(keys.public_context(), packed, np.ones((1, 2)))


def test_sigmoid_is_stable_for_large_logits():
    np.testing.assert_allclose(sigmoid(np.array([-800.0, 0.0, 800.0])), [0.0, 0.5, 1.0])


def test_every_error_descends_from_he_error():
    assert all(issubclass(e, HEError) for e in (SecretKeyPresent, BadContext, BadBundle, BadInput))


def test_saved_keys_are_readable_by_their_owner_only_and_decrypt_after_loading(tmp_path):
    import stat

    keys = ConsumerKeys()
    keys.save(tmp_path / "key")
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    loaded = ConsumerKeys.load(tmp_path / "key")
    assert loaded.public_context() == keys.public_context() and loaded.parameters == keys.parameters
    assert np.allclose(loaded.decrypt(encrypt_vector(keys.public_context(), [1.5, -2.0])), [1.5, -2.0])


def test_keys_never_overwrite_a_file_and_a_public_context_is_not_a_key_file(tmp_path):
    keys = ConsumerKeys()
    keys.save(tmp_path / "key")
    with pytest.raises(FileExistsError):
        keys.save(tmp_path / "key")
    (tmp_path / "public").write_bytes(keys.public_context())
    with pytest.raises(BadContext):
        ConsumerKeys.load(tmp_path / "public")
