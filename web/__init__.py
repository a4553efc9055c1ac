"""HTTP plumbing every feature's routes share, below all of them: it imports no feature package.

    problems   RFC 9457 problem details for every error, and the API object that renders them
    auth       bearer tokens, signed requests, the caller's identity and roles (``authenticated``)
    schemas    the base request schema (no control characters) and pagination

Who a token or a key belongs to is asked of the participant registry through ``auth.Identities``, which the
exchange's composition (``exchange.api``) installs on the app: the plumbing itself knows no table.
"""
