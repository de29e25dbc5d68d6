"""The task hostname for ``[core] hostname_callable``: each demo worker names itself.

Both Celery workers of the demo run on one machine, so the default (the machine's FQDN) would be
the same for both and could not show which worker ran a shard. Each worker process is started
with FERRY_WORKER_NAME set; Airflow records this name as the task instance's hostname, which
Ferry's bulk summary reports. Processes without it (scheduler, api-server) keep the FQDN.
"""

from __future__ import annotations

import os
import socket

ENV = "FERRY_WORKER_NAME"


def worker_name() -> str:
    return os.environ.get(ENV) or socket.getfqdn()
