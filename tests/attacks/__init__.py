"""Attack tests: each performs an attack against real components and asserts it fails (docs/security.md lists them)."""
