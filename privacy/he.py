"""The TenSEAL facade, the only module that imports tenseal: CKKS keys, node encryption, exchange addition.

Who calls what:
    consumer SDK    ConsumerKeys: public_context(), encrypt_weights(), decrypt(), decrypt_scores(), save(), load()
    provider node   encrypt_vector(), encrypted_dot()  (encrypted_dot_per_row: slow reference for benchmarks)
    exchange        add_ciphertexts()                  (never holds a secret key, and refuses a context with one)

Parameters (``CkksParameters``; the defaults). N = 8192 gives 4096 slots per ciphertext and admits up to 218 bits
of coefficient modulus at 128-bit security (HomomorphicEncryption.org standard; SEAL refuses weaker settings).
[60, 40, 40, 60] = 200 bits: the last 60-bit prime is the special prime for key switching, the first leaves
20 bits of integer precision at the last level, and the two 40-bit primes allow two rescalings -- scoring needs
one (ciphertext × plaintext), statistics none. Scale 2^40 matches the middle primes, so a rescale brings the
scale back to about 2^40. Fresh ciphertexts decrypt to ~1e-9 absolute error plus ~2e-16·max|slot| from the
float64 decoder. Relinearisation keys never leave (no ciphertext × ciphertext product anywhere); Galois keys
(~35 MB) are made only when asked, for the per-row reference.

Scoring. The product of the weight ciphertext (scale Δ = 2^40) and a plain column (Δ) has scale Δ², and the
rescaling divides it by the dropped 40-bit prime q, not by Δ; TenSEAL then labels the result with scale Δ, so
every product decrypts multiplied by Δ/q (1 + 1.3e-7 for the default primes). The nodes therefore multiply the
bias by a plaintext of ones too, so the whole score carries that one factor, and ``decrypt_scores`` divides it
out exactly (q is read from the context). The error of a product is absolute: the weight's encryption error
times |x| plus |w| times the encoding error of x; ``privacy.scoring`` scales features and weights so that it
stays below a stated bound relative to the score's range.

Wire format, a bundle: MAGIC ‖ version (u8) ‖ kind (u8) ‖ logical length (u64) ‖ count (u32) ‖ count × (size
(u64) ‖ serialized CKKS vector), big-endian. VECTOR: values in chunks of ≤ N/2 slots; decryption concatenates
and cuts to the length. WEIGHTS: one ciphertext per weight replicated across all slots, then the bias likewise;
length = number of weights. PACKED_WEIGHTS: all weights in one ciphertext, the bias in a one-slot second.

Trust. Every function that takes a context from another party requires it to be public. The consumer can decrypt
any bundle made under its key, so the exchange must release only sums, never one node's bundle. Raw CKKS
decryptions leak key material (Li & Micciancio, 2021): the SDK must never hand decrypted vectors back to a party
that holds the ciphertexts (the exchange), and should round what it publishes. Scoring releases
w·x + b per row, and a node cannot see w: a unit weight vector would return a raw column, so grants must treat
scoring as releasing per-row linear functions of the features. Sizes: a ciphertext is ~330 kB, so replicated
weights cost ~(features + 1)·330 kB; the public context is ~465 kB (~34 MB with Galois keys).

    HEError                (the whole tree is drawn in ``privacy``)
     ├── SecretKeyPresent  a context meant to be public carries the secret key
     ├── BadContext        bytes that are not a usable CKKS context for the operation
     ├── BadBundle         a ciphertext bundle that is malformed, of the wrong kind or does not fit
     └── BadInput          plaintext values that are empty, of the wrong shape or not finite
"""

from __future__ import annotations

import json
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import tenseal as ts

from privacy import PrivacyError

MAGIC = b"PDXH"
VERSION = 1
HEADER = struct.Struct(">4sBBQI")
PART_SIZE = struct.Struct(">Q")
VECTOR, WEIGHTS, PACKED_WEIGHTS = 1, 2, 3
KINDS = frozenset({VECTOR, WEIGHTS, PACKED_WEIGHTS})
SECRET_FILE_MODE = 0o600  # a saved secret context is readable by its owner only, from the moment it exists
KEY_FILE_MAGIC = b"PDXK1\n"  # then the CKKS parameters as one JSON line, then the secret context


class HEError(PrivacyError):
    """Root of every error this module raises."""


class SecretKeyPresent(HEError):
    """A context meant to be public carries the secret key."""


class BadContext(HEError):
    """Bytes that are not a usable CKKS context for the operation."""


class BadBundle(HEError):
    """A ciphertext bundle that is malformed, of the wrong kind, or does not fit the context or its peers."""


class BadInput(HEError):
    """Plaintext values that are empty, of the wrong shape or not finite."""


@dataclass(frozen=True)
class CkksParameters:
    """CKKS parameters: ring degree N, bit sizes of the coefficient-modulus primes, scale 2**scale_bits."""

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 40, 60)
    scale_bits: int = 40

    @property
    def slots(self) -> int:
        """Return how many values one ciphertext holds (N/2)."""
        return self.poly_modulus_degree // 2


DEFAULT_PARAMETERS = CkksParameters()


@dataclass(frozen=True)
class Bundle:
    """Several serialized CKKS vectors that form one logical value (see the wire format above)."""

    kind: int
    length: int
    parts: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        """Return the bundle in its wire format."""
        head = HEADER.pack(MAGIC, VERSION, self.kind, self.length, len(self.parts))
        return head + b"".join(PART_SIZE.pack(len(p)) + p for p in self.parts)

    @classmethod
    def from_bytes(cls, data: bytes, kind: int | None = None) -> Bundle:
        """Parse a bundle, raising ``BadBundle`` unless it is well formed (and of ``kind``, if given)."""
        if not isinstance(data, (bytes, bytearray)) or len(data) < HEADER.size:
            raise BadBundle("a bundle must be bytes holding at least a header")
        magic, version, found, length, count = HEADER.unpack_from(data)
        if magic != MAGIC or version != VERSION or found not in KINDS or count < 1:
            raise BadBundle(f"not a version-{VERSION} ciphertext bundle")
        if kind is not None and found != kind:
            raise BadBundle(f"expected a bundle of kind {kind}, found kind {found}")
        parts, offset = [], HEADER.size
        for _ in range(count):
            if offset + PART_SIZE.size > len(data):
                raise BadBundle("the bundle is truncated")
            (size,) = PART_SIZE.unpack_from(data, offset)
            offset += PART_SIZE.size
            if offset + size > len(data):
                raise BadBundle("the bundle is truncated")
            parts.append(bytes(data[offset : offset + size]))
            offset += size
        if offset != len(data):
            raise BadBundle("trailing bytes after the bundle")
        return cls(found, length, tuple(parts))


# --- contexts ------------------------------------------------------------------------------------------------


def has_secret_key(context_bytes: bytes) -> bool:
    """Return whether a serialized context carries a secret key."""
    return _load_context(context_bytes).is_private()


def require_public_context(context_bytes: bytes) -> None:
    """Raise ``SecretKeyPresent`` or ``BadContext`` unless these bytes are a usable public CKKS context."""
    _public(context_bytes)


class ConsumerKeys:
    """The consumer's CKKS keys: the secret key stays in this object; only public contexts leave it."""

    def __init__(self, parameters: CkksParameters = DEFAULT_PARAMETERS, *, galois_keys: bool = False) -> None:
        try:
            context = ts.context(
                ts.SCHEME_TYPE.CKKS,
                poly_modulus_degree=parameters.poly_modulus_degree,
                coeff_mod_bit_sizes=list(parameters.coeff_mod_bit_sizes),
            )
        except (ValueError, RuntimeError, TypeError) as exc:
            raise BadContext(f"SEAL rejects the CKKS parameters {parameters}") from exc
        context.global_scale = 2.0**parameters.scale_bits
        if galois_keys:
            context.generate_galois_keys()
        self.parameters = parameters
        self.galois_keys = galois_keys
        self._context = context
        self._product_correction = _rescaling_prime(context) / context.global_scale
        self._public_context = context.serialize(
            save_public_key=True, save_secret_key=False, save_galois_keys=galois_keys, save_relin_keys=False
        )
        require_public_context(self._public_context)  # verified once, before anything can leave

    def __repr__(self) -> str:
        return f"ConsumerKeys({self.parameters!r}, galois_keys={self.galois_keys})"

    def save(self, path: Path | str) -> None:
        """Write the secret context to a new file only its owner can read (mode 0600 from creation).

        This is the one place the secret key leaves the object: to the consumer's own disk, so that a paid result
        stays decryptable after the process that submitted the job has gone. Refuses to overwrite a file.
        """
        secret = self._context.serialize(save_public_key=True, save_secret_key=True,
                                         save_galois_keys=self.galois_keys, save_relin_keys=False)
        parameters = json.dumps({"poly_modulus_degree": self.parameters.poly_modulus_degree,
                                 "coeff_mod_bit_sizes": list(self.parameters.coeff_mod_bit_sizes),
                                 "scale_bits": self.parameters.scale_bits}).encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
        with os.fdopen(descriptor, "wb") as out:
            out.write(KEY_FILE_MAGIC + parameters + b"\n" + secret)

    @classmethod
    def load(cls, path: Path | str) -> ConsumerKeys:
        """Return the keys saved at ``path``, raising ``BadContext`` unless it holds a secret CKKS context."""
        data = Path(path).read_bytes()
        header, _, secret = data[len(KEY_FILE_MAGIC):].partition(b"\n")
        try:
            if not data.startswith(KEY_FILE_MAGIC):
                raise ValueError("no pdx key-file header")
            described = json.loads(header)
            parameters = CkksParameters(int(described["poly_modulus_degree"]),
                                        tuple(int(b) for b in described["coeff_mod_bit_sizes"]),
                                        int(described["scale_bits"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise BadContext(f"{path} is not a key file written by ConsumerKeys.save") from exc
        context = _load_context(secret)
        if not context.is_private() or _parms(context).scheme().name != "CKKS":
            raise BadContext(f"{path} does not hold a secret CKKS context")
        keys = cls.__new__(cls)
        keys.parameters = parameters
        keys.galois_keys = context.has_galois_keys()
        keys._context = context
        keys._product_correction = _rescaling_prime(context) / context.global_scale
        keys._public_context = context.serialize(save_public_key=True, save_secret_key=False,
                                                 save_galois_keys=keys.galois_keys, save_relin_keys=False)
        require_public_context(keys._public_context)
        return keys

    def __reduce__(self) -> tuple:
        raise TypeError("ConsumerKeys cannot be pickled: the secret key never leaves this object")

    def public_context(self) -> bytes:
        """Return the context serialized without the secret key (what nodes and the exchange receive)."""
        return self._public_context

    def decrypt(self, bundle_bytes: bytes) -> np.ndarray:
        """Return the float64 values of a VECTOR bundle made under this key."""
        bundle = Bundle.from_bytes(bundle_bytes, VECTOR)
        with _tenseal("decrypting"):
            chunks = [ts.ckks_vector_from(self._context, part).decrypt() for part in bundle.parts]
        values = np.concatenate([np.asarray(c, dtype=np.float64) for c in chunks])
        if values.size < bundle.length:
            raise BadBundle(f"the bundle claims {bundle.length} values but holds {values.size}")
        return values[: bundle.length]

    def decrypt_scores(self, bundle_bytes: bytes, *, logistic: bool = False) -> np.ndarray:
        """Return decrypted linear scores, corrected for the rescaling prime, or their sigmoid for a logistic model."""
        scores = self.decrypt(bundle_bytes) * self._product_correction
        return sigmoid(scores) if logistic else scores

    def encrypt_weights(self, weights: Sequence[float] | np.ndarray, bias: float, *, packed: bool = False) -> bytes:
        """Return encrypted model weights: replicated for ``encrypted_dot``, packed for ``encrypted_dot_per_row``."""
        w = _vector(weights, "weights")
        b = float(_vector([bias], "bias")[0])
        slots = self.parameters.slots
        if packed and w.size > slots:
            raise BadInput(f"{w.size} weights do not fit one ciphertext of {slots} slots")
        with _tenseal("encrypting weights"):
            if packed:
                parts = (_encrypt(self._context, w), _encrypt(self._context, np.array([b])))
                return Bundle(PACKED_WEIGHTS, w.size, parts).to_bytes()
            parts = tuple(_encrypt(self._context, np.full(slots, value)) for value in [*w, b])
        return Bundle(WEIGHTS, w.size, parts).to_bytes()


# --- what nodes and the exchange do --------------------------------------------------------------------------


def encrypt_vector(public_context_bytes: bytes, values: Sequence[float] | np.ndarray) -> bytes:
    """Return ``values`` encrypted under the consumer's public context, chunked by the slot count."""
    context = _public(public_context_bytes)
    x = _vector(values, "values")
    slots = _slots(context)
    with _tenseal("encrypting"):
        parts = tuple(_encrypt(context, x[i : i + slots]) for i in range(0, x.size, slots))
    return Bundle(VECTOR, x.size, parts).to_bytes()


def add_ciphertexts(public_context_bytes: bytes, bundles: Sequence[bytes]) -> bytes:
    """Return the encrypted sum of VECTOR bundles of equal shape, using only a public context."""
    context = _public(public_context_bytes)
    parsed = [Bundle.from_bytes(b, VECTOR) for b in bundles]
    if not parsed:
        raise BadBundle("nothing to add")
    first = parsed[0]
    for other in parsed[1:]:
        if (other.length, len(other.parts)) != (first.length, len(first.parts)):
            raise BadBundle(f"cannot add a bundle of {other.length} values to one of {first.length}")
    with _tenseal("adding ciphertexts"):
        sums = [ts.ckks_vector_from(context, part) for part in first.parts]
        for other in parsed[1:]:
            for total, part in zip(sums, other.parts):
                total.add_(ts.ckks_vector_from(context, part))
        return Bundle(VECTOR, first.length, tuple(s.serialize() for s in sums)).to_bytes()


def encrypted_dot(public_context_bytes: bytes, encrypted_weights_bytes: bytes, features: np.ndarray) -> bytes:
    """Return encrypted scores w·x + b for every row, packing N/2 rows per ciphertext."""
    context = _public(public_context_bytes)
    bundle = Bundle.from_bytes(encrypted_weights_bytes, WEIGHTS)
    if bundle.length < 1 or len(bundle.parts) != bundle.length + 1:
        raise BadBundle(f"a weights bundle of {bundle.length} weights needs {bundle.length + 1} ciphertexts")
    x = _matrix(features, bundle.length)
    slots = _slots(context)
    parts = []
    with _tenseal("scoring"):
        *weights, bias = (ts.ckks_vector_from(context, part) for part in bundle.parts)
        ones = [1.0] * slots
        for start in range(0, x.shape[0], slots):
            block = np.zeros((slots, x.shape[1]))
            rows = x[start : start + slots]
            block[: rows.shape[0]] = rows
            # Plain column j times the ciphertext holding w_j in every slot: one product per feature, no rotations.
            score = weights[0] * block[:, 0].tolist()
            for w, column in zip(weights[1:], block.T[1:]):
                score.add_(w * column.tolist())
            score.add_(bias * ones)  # multiplied too, so the whole score carries one rescaling factor (above)
            parts.append(score.serialize())
    return Bundle(VECTOR, x.shape[0], tuple(parts)).to_bytes()


def encrypted_dot_per_row(public_context_bytes: bytes, encrypted_weights_bytes: bytes, features: np.ndarray) -> bytes:
    """Return encrypted scores one ciphertext per row (slow reference for benchmarks; needs Galois keys)."""
    context = _public(public_context_bytes, galois=True)
    bundle = Bundle.from_bytes(encrypted_weights_bytes, PACKED_WEIGHTS)
    if len(bundle.parts) != 2:
        raise BadBundle("a packed weights bundle holds the weights and the bias")
    x = _matrix(features, bundle.length)
    with _tenseal("scoring per row"):
        weights, bias = (ts.ckks_vector_from(context, part) for part in bundle.parts)
        parts = tuple((weights.dot(row.tolist()) + bias * [1.0]).serialize() for row in x)
    return Bundle(VECTOR, x.shape[0], parts).to_bytes()


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Return the logistic function of ``z``, stable for large |z|."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


# --- helpers -------------------------------------------------------------------------------------------------


def _load_context(context_bytes: bytes) -> ts.Context:
    if not isinstance(context_bytes, (bytes, bytearray)):
        raise BadContext("a context must be bytes")
    try:
        return ts.context_from(bytes(context_bytes))
    except (ValueError, RuntimeError, TypeError) as exc:
        raise BadContext("the bytes are not a serialized TenSEAL context") from exc


def _public(context_bytes: bytes, *, galois: bool = False) -> ts.Context:
    context = _load_context(context_bytes)
    if context.is_private():
        raise SecretKeyPresent("the context carries the consumer's secret key; only public contexts are accepted")
    if _parms(context).scheme().name != "CKKS" or not context.has_public_key():
        raise BadContext("expected a CKKS context with a public key")
    try:
        context.global_scale
    except ValueError as exc:
        raise BadContext("the context has no global scale") from exc
    if galois and not context.has_galois_keys():
        raise BadContext("this operation needs a context with Galois keys")
    return context


def _parms(context: ts.Context):  # noqa: ANN202 -- a SEAL EncryptionParameters binding
    return context.seal_context().data.key_context_data().parms()


def _slots(context: ts.Context) -> int:
    return _parms(context).poly_modulus_degree() // 2


def _rescaling_prime(context: ts.Context) -> int:
    # The prime the first rescaling drops. TenSEAL binds no coeff_modulus() list, only the low 64-bit word of each
    # level's modulus product; the primes are odd, so that word over the next level's, mod 2^64, is the prime.
    # Checked to be a prime ≡ 1 mod 2N of the bit size the levels differ by, or the context is refused.
    top = context.seal_context().data.first_context_data()
    below = top.next_context_data()
    if below is None:
        raise BadContext("a CKKS context for scoring needs at least two data primes (one rescaling)")
    word = 2**64
    prime = top.total_coeff_modulus() * pow(below.total_coeff_modulus(), -1, word) % word
    bits = top.total_coeff_modulus_bit_count() - below.total_coeff_modulus_bit_count()
    degree = top.parms().poly_modulus_degree()
    if abs(prime.bit_length() - bits) > 1 or prime % (2 * degree) != 1 or not _is_prime(prime):
        raise BadContext("cannot read the rescaling prime of this CKKS context")
    return prime


def _is_prime(n: int) -> bool:
    # Deterministic Miller-Rabin for n < 3.3e24 with the first twelve primes as bases.
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    if n < 2 or any(n % p == 0 for p in bases):
        return n in bases
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _encrypt(context: ts.Context, values: np.ndarray) -> bytes:
    return ts.ckks_vector(context, values.tolist()).serialize()


@contextmanager
def _tenseal(action: str) -> Iterator[None]:
    # Translate TenSEAL's errors at the boundary; they carry no secrets, but callers should see our tree.
    try:
        yield
    except HEError:
        raise
    except (ValueError, RuntimeError, TypeError) as exc:
        raise BadBundle(f"{action} failed: the ciphertexts do not fit the context or each other") from exc


def _vector(values: object, what: str) -> np.ndarray:
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{what} must be numbers") from exc
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise BadInput(f"{what} must be a non-empty 1-D array of finite numbers, got shape {x.shape}")
    return x


def _matrix(features: object, n_features: int) -> np.ndarray:
    try:
        x = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInput("features must be numbers") from exc
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != n_features or not np.all(np.isfinite(x)):
        raise BadInput(f"features must be a finite (rows, {n_features}) array, got shape {x.shape}")
    return x
