"""The scale path: ``privacy.federated``'s training run on the Flower framework (SuperLink, one SuperNode per node).

The same rounds as ``federated.train``, driven by a Flower ``ServerApp`` and computed by a ``ClientApp`` on each
SuperNode over that node's own rows; every per-node vector is summed with Flower's SecAgg+ (or, where every node
allows it, in the clear), so the server learns the same sums pdx's own engine decrypts. See ``docs/flower.md``.

    codec       pure: a float vector as SecAgg+ integers (fixed point in limbs) and the exact sum back
    task        pure: what a node contributes each pass, and what the server makes of the sum
    settings    pure: the run's settings as Flower run config (defaults in ``app/pyproject.toml``)
    client_app  Flower ClientApp (imports flwr): loads the node's rows from its node config, answers each pass
    server_app  Flower ServerApp (imports flwr): the passes, secure or plain sums, the result file
    launch      starts a SuperLink and SuperNodes on loopback, runs the app, returns the model, tears down

Importing this package imports neither Flower nor any module above. Every error raised on purpose descends from
``FlowerError`` (under ``privacy.PrivacyError``):

    FlowerError             the Flower path rejects a setting or a vector, or the federation fails
     ├── CodecError         a value too large for the fixed-point codec, or a sum that is not one of its sums
     └── FederationFailed   a SuperLink, SuperNode or run that died, failed or timed out (its log tail attached)
"""

from __future__ import annotations

from privacy import PrivacyError


class FlowerError(PrivacyError):
    """Root of every error the Flower path raises on purpose."""


class CodecError(FlowerError):
    """A value the fixed-point codec cannot carry, or limb sums that no set of its encodings adds up to."""


class FederationFailed(FlowerError):
    """The SuperLink, a SuperNode or the run died, failed or timed out."""
