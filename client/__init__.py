"""The pdx SDK and command-line interface (consumer, provider, regulator and operator commands)."""
