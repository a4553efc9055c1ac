"""The permissioned, tamper-evident ledger: Merkle log, signed entries, checkpoints, offline audit."""
