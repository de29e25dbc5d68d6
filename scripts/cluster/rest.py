"""The few calls of Airflow's REST API (v2) the demo makes: trigger a run, follow it, read XComs."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class AirflowApi:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/") + "/api/v2"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise RuntimeError(
                f"{method} {path}: HTTP {exc.code}: {exc.read()[:500].decode(errors='replace')}"
            ) from None

    def dag_parsed(self, dag_id: str) -> bool:
        try:
            self._call("GET", f"/dags/{dag_id}")
        except RuntimeError as exc:
            if "HTTP 404" in str(exc):
                return False
            raise
        return True

    def trigger(self, dag_id: str, run_id: str, logical_date: str) -> None:
        self._call("POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": logical_date})

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        query = urllib.parse.urlencode({"map_index": map_index})
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value?{query}"
        value = self._call("GET", path)["value"]
        return json.loads(value) if isinstance(value, str) else value
