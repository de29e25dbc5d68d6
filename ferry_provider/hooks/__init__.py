"""Storage hooks: one per store, all behind the interface in ``hooks.base``."""
