"""Participants (organisations), their roles, signing keys and API tokens."""
