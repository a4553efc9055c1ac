"""Privacy core: additive aggregates (pure NumPy), exact fixed-point sums, the CKKS facade (TenSEAL),
differential privacy (OpenDP mechanisms, the release of statistics), encrypted scoring's scaling, federated training
(pure NumPy) and its privacy accountant (dp-accounting).

``aggregation``, ``fixedpoint``, ``release``, ``scoring``, ``dp``, ``federated`` and ``accountant`` are pure (no
web, database or TenSEAL); ``he`` is the only module that imports TenSEAL. Importing this package
imports none of them, so a pure core never pulls TenSEAL in. Every error raised on purpose descends from
``PrivacyError``:

    ValueError
     └── PrivacyError               anything the privacy package rejects
          ├── AggregationError      aggregation: a plan, table or result vector it cannot serve
          │    ├── BadPlan          a malformed plan, or a vector that does not fit the plan's layout
          │    ├── UnknownColumn    the plan names a column the table lacks
          │    ├── BadTable         columns of unequal length, non-numeric or non-finite values
          │    └── GroupTooSmall    a released cell (set, group or bin) holds 1 .. min_group_size-1 rows
          ├── HEError               he: anything the CKKS facade rejects
          │    ├── SecretKeyPresent a context meant to be public carries the secret key
          │    ├── BadContext       bytes that are not a usable CKKS context for the operation
          │    ├── BadBundle        a ciphertext bundle that is malformed, of the wrong kind or does not fit
          │    └── BadInput         plaintext values that are empty, of the wrong shape or not finite
          ├── FixedPointError       fixedpoint: digits that do not decode
          │    └── OutOfRange       a value beyond the exact range of encrypted sums (or not finite)
          ├── ReleaseError          release: a private plan that cannot be released (bounds, ε, range), with its field
          ├── ScoringError          scoring: encrypted scoring's scaling
          │    ├── BadRange         a range that is not finite, empty or reversed; weights that do not fit
          │    └── OutOfRange       a feature value beyond its planned range, or not finite
          ├── DPError               dp, accountant: a sensitivity, epsilon, scale or level it cannot use
          ├── FederatedError        federated: a training configuration, partition or aggregate it cannot use
          └── FlowerError           flower (the Flower scale path): a setting, a vector or a federation that failed
               ├── CodecError       a value the SecAgg+ fixed-point codec cannot carry, or a sum that is not its
               └── FederationFailed a SuperLink, SuperNode or run that died, failed or timed out
"""

from __future__ import annotations


class PrivacyError(ValueError):
    """Root of every error the privacy package raises on purpose."""
