"""``make demo-cluster``: Ferry's sharded bulk DAG on a real Airflow cluster with two Celery workers.

Everything runs on 127.0.0.1 and lives under the checkout's ``.cluster/``: Redis (the broker),
PostgreSQL (the metadata database and Celery's result backend), SeaweedFS (the S3 store), the
Airflow api-server, scheduler, dag-processor and triggerer, and two ``airflow celery worker``
processes, each with its own task hostname. See ``__main__.py`` for the run itself.
"""
