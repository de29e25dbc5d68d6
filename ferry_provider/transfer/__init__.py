"""The transfer engine. It imports nothing from Airflow and works on any ``StorageHook``."""
