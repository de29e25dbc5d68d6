"""Ferry triggers."""
