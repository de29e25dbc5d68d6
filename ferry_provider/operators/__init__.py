"""Ferry operators."""
