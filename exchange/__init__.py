"""The exchange service: participants, catalog, and (later) jobs and metering."""
