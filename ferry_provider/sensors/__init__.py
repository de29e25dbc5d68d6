"""Ferry sensors."""
