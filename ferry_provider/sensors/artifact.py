"""FerryArtifactSensor: wait until an artifact exists and is valid, in poke, reschedule or deferrable mode."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.configuration import conf
from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from ferry_provider.hooks.errors import FerryError, InvalidArgumentError, PermissionDeniedError
from ferry_provider.hooks.factory import hook_for
from ferry_provider.transfer.artifact_check import INVALID, OKAY, ArtifactCheck
from ferry_provider.triggers.artifact import FerryArtifactTrigger

STATE_KEY = "ferry_artifact_observation"


class FerryArtifactSensor(BaseSensorOperator):
    """Wait until ``url`` (an object, a prefix ending in '/', or a glob) holds valid artifacts.

    Beyond existence: ``expected_size`` / ``min_size``, ``expected_digests`` (crc32c, crc32,
    crc64nvme, md5, sha256 — streamed when the store keeps none, up to ``sha256_max_bytes``), ``manifest`` (an
    ``OK`` row naming each object as its source or destination in a Ferry manifest CSV, so both upload and
    download manifests serve), ``stable_checks`` (size and ETag
    unchanged over that many consecutive checks), ``marker`` (e.g. ``_SUCCESS``) and
    ``min_count`` for prefixes and globs. A present but wrong object fails the task at once
    with expected and actual values, unless ``wait_for_valid``. The validated objects' info is
    the XCom return value. ``deferrable`` defaults to ``[operators] default_deferrable``.

    Only "not found" means "not yet". A missing or malformed connection and a refusal by the
    store (401/403, a bad signature or key) fail the task at once with the store's reason:
    waiting would not mend them. Connection failures, throttling and 5xx answers are logged and
    checked again, until ``timeout``, which a deferred sensor's trigger also enforces itself.

    Takes the arguments of Airflow's BaseSensorOperator (``poke_interval``, ``timeout``, ``mode``,
    ``soft_fail``, ``exponential_backoff``...), plus:

    :param url: What to watch (templated): one object, a prefix ending in ``/`` (every object under
        it), or a glob (``*``, ``?`` or ``[``, matched against whole URLs; ``*`` also matches ``/``).
        Folder markers and Ferry's temporary objects are not counted.
    :param conn_id: Connection for ``url`` and ``marker`` (templated). Default ``None``: the store's
        default connection.
    :param min_count: For prefixes and globs, how many matching objects must be there (>= 1,
        default 1). A single-object URL finds at most one.
    :param expected_size: Exact size in bytes of each object (templated): smaller means "not yet",
        larger is invalid. Default ``None``: not checked.
    :param min_size: Least size in bytes of each object (templated); smaller means "not yet".
        Default ``None``: not checked.
    :param expected_digests: Digests each object must match (templated), as ``{algorithm: hex}``
        with algorithms ``crc32c``, ``crc32``, ``crc64nvme`` (with awscrt installed), ``md5`` and
        ``sha256``. The store's value is used when it keeps a whole-object one; otherwise the object
        is read and hashed. Unknown algorithms fail the task at the first check. Default: none.
    :param sha256_max_bytes: Largest object, in bytes, the sensor will read to compute any digest the
        store does not keep (not only SHA-256); a larger one fails the task. Default 1 GiB.
    :param manifest: Ferry manifest, local path or object URL, CSV or JSON lines (templated): each
        object must appear in an ``OK`` or ``skip`` row as its source or destination, with a
        matching CRC32C when the row has one; until then the sensor waits. Default ``None``.
    :param manifest_conn_id: Connection used to read ``manifest``. Default ``None``: the manifest
        store's default connection (not ``conn_id``).
    :param stable_checks: Consecutive checks over which every object's size and ETag must stay the
        same before it counts (>= 0, default 0: no wait). Kept across reschedules through the task
        state store.
    :param marker: An object that must exist before anything else is checked (templated), read
        through ``conn_id``: a URL such as ``s3://bucket/drop/_SUCCESS``, or a bare name such as
        ``_SUCCESS`` for an object in the folder of ``url`` (up to its last ``/``). Default ``None``.
    :param wait_for_valid: When ``True``, a present but invalid object (wrong size, digest or
        manifest CRC32C) means "not yet" instead of failing the task. Default ``False``.
    :param deferrable: When ``True``, after one check on the worker the wait is handed to
        FerryArtifactTrigger, holding no worker slot. Default: ``[operators] default_deferrable``.
    :param max_poke_interval: Deferrable mode only: the longest wait between checks, in seconds, when
        ``exponential_backoff`` grows it (default 600.0). Poke and reschedule modes use Airflow's
        ``max_wait`` instead.
    """

    template_fields: Sequence[str] = (
        "url",
        "conn_id",
        "expected_digests",
        "expected_size",
        "min_size",
        "manifest",
        "marker",
    )

    def __init__(
        self,
        *,
        url: str,
        conn_id: str | None = None,
        min_count: int = 1,
        expected_size: int | None = None,
        min_size: int | None = None,
        expected_digests: dict[str, str] | None = None,
        sha256_max_bytes: int = 1 << 30,
        manifest: str | None = None,
        manifest_conn_id: str | None = None,
        stable_checks: int = 0,
        marker: str | None = None,
        wait_for_valid: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_poke_interval: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.conn_id = conn_id
        self.min_count = min_count
        self.expected_size = expected_size
        self.min_size = min_size
        self.expected_digests = expected_digests or {}
        self.sha256_max_bytes = sha256_max_bytes
        self.manifest = manifest
        self.manifest_conn_id = manifest_conn_id
        self.stable_checks = stable_checks
        self.marker = marker
        self.wait_for_valid = wait_for_valid
        self.deferrable = deferrable
        self.max_poke_interval = max_poke_interval
        self._observation: dict[str, Any] | None = None
        templated = (url, expected_size, min_size, expected_digests, manifest, marker)
        if not any("{{" in str(value) or "{%" in str(value) for value in templated):
            self._check()  # what the values already say is checked when the DAG is parsed

    def _check(self) -> ArtifactCheck:
        def as_int(value: Any) -> int | None:
            return None if value in (None, "") else int(value)

        return ArtifactCheck(
            url=self.url,
            conn_id=self.conn_id,
            min_count=self.min_count,
            expected_size=as_int(self.expected_size),
            min_size=as_int(self.min_size),
            expected_digests={k: str(v) for k, v in dict(self.expected_digests).items() if v},
            sha256_max_bytes=self.sha256_max_bytes,
            manifest=self.manifest or None,
            manifest_conn_id=self.manifest_conn_id,
            stable_checks=self.stable_checks,
            marker=self.marker or None,
            wait_for_valid=self.wait_for_valid,
        )

    # -- poke and reschedule ----------------------------------------------------------------
    def poke(self, context: Context) -> bool | PokeReturnValue:
        store = context.get("task_state_store")  # survives reschedules (Airflow 3.3)
        previous = self._observation
        if previous is None and store is not None:
            previous = store.get(STATE_KEY, None)
        try:
            result = self._check().run(hook_for, previous)
        except (InvalidArgumentError, PermissionDeniedError) as exc:
            raise AirflowFailException(f"{self.url}: {exc}") from None
        except FerryError as exc:
            self.log.warning("check failed, will try again: %s", exc)
            return False
        self._observation = result.observation
        if store is not None and self.stable_checks:
            store.set(STATE_KEY, result.observation)
        if result.state == INVALID:
            raise AirflowFailException(result.reason)
        if result.state == OKAY:
            self.log.info("%s: %s", self.url, result.reason)
            return PokeReturnValue(is_done=True, xcom_value=result.objects)
        self.log.info("%s: %s", self.url, result.reason)
        return False

    # -- deferrable -------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)  # often already there: no trip through the triggerer
        if isinstance(first, PokeReturnValue):
            return first.xcom_value
        self.defer(
            trigger=FerryArtifactTrigger(
                self._check().to_dict(),
                poke_interval=float(self.poke_interval),
                exponential_backoff=self.exponential_backoff,
                max_interval=self.max_poke_interval,
                # An absolute deadline, so a restarted triggerer (or dag.test(), which runs
                # triggers inline and enforces no deferral timeout) still stops on time.
                deadline=time.time() + float(self.timeout),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        status = (event or {}).get("status")
        if status == "timeout":
            reason = f"{self.url}: sensor timed out after {self.timeout}s: {event.get('reason', '')}"  # type: ignore[union-attr]
            raise AirflowSkipException(reason) if self.soft_fail else AirflowSensorTimeout(reason)
        if status != "success":
            raise AirflowFailException((event or {}).get("reason", "the artifact trigger failed"))
        self.log.info("%s: %s", self.url, event.get("reason", "valid"))
        return event["objects"]
