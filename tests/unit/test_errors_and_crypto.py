"""Problem-message flattening and the Ed25519/token helpers."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import crypto
from web.problems import flatten_messages


def test_nested_marshmallow_messages_flatten_to_dotted_paths():
    messages = {"fields": {0: {"type": ["Must be one of: string."]}}, "grade": ["Not a valid integer."],
                "price": {"amount": ["Too big."]}}
    assert flatten_messages(messages) == {"fields.0.type": ["Must be one of: string."],
                                          "grade": ["Not a valid integer."], "price.amount": ["Too big."]}


def test_registration_proof_verifies_only_for_its_participant_and_key():
    key = Ed25519PrivateKey.generate()
    public = crypto.public_key_text(key.public_key())
    proof = crypto.sign(key, crypto.key_registration_message("prt_a", public))
    crypto.verify(public, proof, crypto.key_registration_message("prt_a", public))
    with pytest.raises(crypto.BadKey):
        crypto.verify(public, proof, crypto.key_registration_message("prt_b", public))
    other = crypto.public_key_text(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(crypto.BadKey):
        crypto.verify(other, proof, crypto.key_registration_message("prt_a", public))


@pytest.mark.parametrize("text", ["not base64!", "AAAA", crypto.b64encode(b"x" * 33)])
def test_malformed_public_keys_are_refused(text):
    with pytest.raises(crypto.BadKey):
        crypto.load_public_key(text)


def test_tokens_are_random_and_stored_hashes_differ_from_them():
    first, second = crypto.new_token(), crypto.new_token()
    assert first != second and first.startswith("pdx_") and len(first) > 40
    assert crypto.token_hash(first) != first and len(crypto.token_hash(first)) == 64


def test_the_fast_canonical_form_equals_rfc8785_on_json_without_floats():
    import rfc8785
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from ledger.entries import canonical

    scalars = st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | st.text()
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                          st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127), max_size=8), inner,
                                          max_size=4), max_leaves=20)

    @settings(max_examples=300, deadline=None)
    @given(values)
    def agrees(value):
        assert canonical(value) == rfc8785.dumps(value)

    agrees()
