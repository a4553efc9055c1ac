"""Plumbing shared by the exchange's packages: configuration, database, errors, crypto helpers."""
