"""Ferry: an Apache Airflow provider for fast, verified bulk object-storage transfers."""

__version__ = "0.1.0"
