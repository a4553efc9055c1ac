"""C2SP signed notes, tlog checkpoints and tlog cosignatures (Ed25519). Pure.

    checkpoint body    = "<origin>\n<size>\n<base64 root>\n"
    signature line     = "— <key name> base64(key id[4] ‖ signature)\n"
    log key id         = SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[:4]          (c2sp.org/signed-note)
    cosigner key id    = SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4]          (c2sp.org/tlog-cosignature)
    cosigned message   = "cosignature/v1\ntime <unix seconds>\n" ‖ checkpoint body
    cosignature        = timestamp (u64 big-endian) ‖ Ed25519 signature
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import LedgerError
from ledger.merkle import HASH_SIZE

EM_DASH = "\u2014"
ED25519_ALG = b"\x01"
COSIGNATURE_V1_ALG = b"\x04"
COSIGNATURE_HEADER = "cosignature/v1\n"
KEY_ID_BYTES = 4
ED25519_SIGNATURE_BYTES = 64
TIMESTAMP = struct.Struct(">Q")
_SIGNATURE_LINE = re.compile(f"^{EM_DASH} (\\S+) ([A-Za-z0-9+/=]+)$")
_ORIGIN = re.compile(r"^[^\s\x00-\x1f]{1,255}$")


class NoteError(LedgerError, ValueError):
    """A note, checkpoint or cosignature is malformed or does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, size and root hash."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """Return the checkpoint's note text."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{EM_DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def log_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Return the signed-note key id of an Ed25519 log key."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALG + _raw(public_key)).digest()[:KEY_ID_BYTES]


def cosigner_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Return the key id of an Ed25519 cosigner (tlog-cosignature v1)."""
    return hashlib.sha256(name.encode() + b"\n" + COSIGNATURE_V1_ALG + _raw(public_key)).digest()[:KEY_ID_BYTES]


def sign_checkpoint(checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey) -> Signature:
    """Sign a checkpoint body as the log."""
    return Signature(name, log_key_id(name, key.public_key()), key.sign(checkpoint.body().encode()))


def cosign(checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey, timestamp: int) -> Signature:
    """Cosign a checkpoint as a witness at ``timestamp`` (POSIX seconds)."""
    message = cosigned_message(checkpoint, timestamp)
    return Signature(name, cosigner_key_id(name, key.public_key()), TIMESTAMP.pack(timestamp) + key.sign(message))


def cosigned_message(checkpoint: Checkpoint, timestamp: int) -> bytes:
    """Return the bytes a cosigner signs."""
    if not 0 <= timestamp < 2**63:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range")
    return f"{COSIGNATURE_HEADER}time {timestamp}\n".encode() + checkpoint.body().encode()


def note(checkpoint: Checkpoint, signatures: list[Signature]) -> str:
    """Return the signed note: body, blank line, signature lines."""
    return checkpoint.body() + "\n" + "".join(signature.line() for signature in signatures)


def parse_note(text: str) -> tuple[Checkpoint, list[Signature]]:
    """Parse a checkpoint note into its body and signature lines, refusing any malformed part."""
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise NoteError("a note may not contain control characters other than newline")
    body, separator, signature_block = text.partition("\n\n")
    if not separator or not signature_block.endswith("\n"):
        raise NoteError("a note is its text, a blank line, then newline-terminated signature lines")
    lines = body.split("\n")
    if len(lines) < 3:
        raise NoteError(f"a checkpoint body has at least 3 lines, found {len(lines)}")
    origin, size_text, root_text = lines[:3]
    if not _ORIGIN.match(origin):
        raise NoteError(f"checkpoint origin {origin!r} is empty or holds spaces")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise NoteError(f"checkpoint size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise NoteError("checkpoint root is not base64") from exc
    if len(root) != HASH_SIZE:
        raise NoteError(f"checkpoint root has {len(root)} bytes, expected {HASH_SIZE}")
    signatures = []
    for line in signature_block[:-1].split("\n"):
        match = _SIGNATURE_LINE.match(line)
        if match is None:
            raise NoteError(f"malformed signature line {line!r}")
        try:
            raw = base64.b64decode(match.group(2), validate=True)
        except binascii.Error as exc:
            raise NoteError(f"signature of {match.group(1)} is not base64") from exc
        if len(raw) <= KEY_ID_BYTES:
            raise NoteError(f"signature of {match.group(1)} is too short")
        signatures.append(Signature(match.group(1), raw[:KEY_ID_BYTES], raw[KEY_ID_BYTES:]))
    checkpoint = Checkpoint(origin, int(size_text), root)
    if checkpoint.body() != body + "\n":
        raise NoteError("checkpoint body has extension lines, which this log never writes")
    return checkpoint, signatures


def verify_log_signature(checkpoint: Checkpoint, signatures: list[Signature], name: str,
                         public_key: Ed25519PublicKey) -> None:
    """Verify the log's own signature line among ``signatures``; raise ``NoteError`` if absent or wrong."""
    key_id = log_key_id(name, public_key)
    mine = [s for s in signatures if s.name == name and s.key_id == key_id]
    if not mine:
        raise NoteError(f"no signature by the log key {name} (key id {key_id.hex()}) on the checkpoint")
    try:
        public_key.verify(mine[0].signature, checkpoint.body().encode())
    except InvalidSignature as exc:
        raise NoteError(f"the log signature of {name} over checkpoint size {checkpoint.size} does not verify") \
            from exc


def verify_cosignature(checkpoint: Checkpoint, signature: Signature, name: str,
                       public_key: Ed25519PublicKey) -> int:
    """Verify one cosignature line and return its timestamp; raise ``NoteError`` if it does not verify."""
    expected = cosigner_key_id(name, public_key)
    if signature.name != name or signature.key_id != expected:
        raise NoteError(f"cosignature names {signature.name}/{signature.key_id.hex()}, expected "
                        f"{name}/{expected.hex()}")
    if len(signature.signature) != TIMESTAMP.size + ED25519_SIGNATURE_BYTES:
        raise NoteError(f"cosignature of {name} has {len(signature.signature)} bytes, expected "
                        f"{TIMESTAMP.size + ED25519_SIGNATURE_BYTES}")
    (timestamp,) = TIMESTAMP.unpack(signature.signature[:TIMESTAMP.size])
    try:
        public_key.verify(signature.signature[TIMESTAMP.size:], cosigned_message(checkpoint, timestamp))
    except InvalidSignature as exc:
        raise NoteError(f"the cosignature of {name} over checkpoint size {checkpoint.size} does not verify") \
            from exc
    return timestamp
