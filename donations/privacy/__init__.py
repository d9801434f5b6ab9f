"""A donor's personal data on request: export and erasure (layer 4)."""
