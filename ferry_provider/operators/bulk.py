"""Bulk transfers in Airflow: every object under a prefix, optionally sharded over mapped tasks.

    plan = FerryBulkPlanOperator(task_id="plan", source="s3://raw/{{ ds }}/", conn_id="raw",
                                 listing_location="s3://work/ferry/{{ run_id }}/listing/",
                                 manifest_location="s3://work/ferry/{{ run_id }}/manifests/")
    move = FerryBulkTransferOperator.partial(task_id="move", source="s3://raw/{{ ds }}/",
                                             destination="gs://lake/dt={{ ds }}/", ...
                                             ).expand_kwargs(plan.output)
    merge = FerryManifestMergeOperator(task_id="merge", manifests="{{ ti.xcom_pull('plan') }}", ...)

Airflow's executor spreads the mapped shards over its workers; Ferry schedules nothing itself.
Destinations come from the run's logical date (templates), never from the clock, so rerunning a
date skips what is already there.
"""

from __future__ import annotations

import ast
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from ferry_provider.hooks.errors import FerryError, InvalidArgumentError, NotFoundError
from ferry_provider.hooks.factory import hook_for
from ferry_provider.hooks.url import parse_url
from ferry_provider.operators.lineage import emit_asset_events
from ferry_provider.operators.transfer import FerryTransferOperator
from ferry_provider.transfer.bulk import BulkOptions, BulkSummary, bulk_transfer
from ferry_provider.transfer.listing import ListFilter
from ferry_provider.transfer.manifest_file import content_type_of, format_of
from ferry_provider.transfer.shards import (
    MAX_SHARDS,
    merge_manifests,
    parse_listing,
    plan_shards,
    write_to,
)

FILTER_FIELDS = ("include", "regex", "min_size", "max_size", "modified_since")


def _filter(op: Any) -> ListFilter:
    since = op.modified_since
    if isinstance(since, str) and since:
        try:
            since = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgumentError(
                f"modified_since must be an ISO 8601 time with a zone (2026-11-23T00:00:00+00:00), got {since!r}"
            ) from None

    def as_int(name: str, value: Any) -> int | None:  # templated values arrive as text
        if value in (None, ""):
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{name} must be a number of bytes >= 0, got {value!r}") from None

    sizes = as_int("min_size", op.min_size), as_int("max_size", op.max_size)
    return ListFilter(op.include or None, op.regex or None, *sizes, since or None)


def _check_filters_when_parsed(op: Any) -> None:
    """Untemplated filter values are checked when the DAG is parsed; templated ones at run time."""
    if not any("{{" in str(getattr(op, name)) or "{%" in str(getattr(op, name)) for name in FILTER_FIELDS):
        _filter(op)


def _worker(context: Context) -> str | None:
    """The host that ran this task, as Airflow records it for the task instance ([core]
    hostname_callable): which worker took a shard shows how the executor spread them."""
    return getattr(context.get("ti"), "hostname", None)


def _read(url: str, conn_id: str | None) -> str:
    parsed = parse_url(url)
    if parsed.is_local:
        with open(parsed.key) as f:
            return f.read()
    return hook_for(url, conn_id).read_bytes(url).decode()


class FerryBulkTransferOperator(FerryTransferOperator):
    """Every object under ``source`` (a prefix or a local folder) to the same relative key under
    ``destination``: downloads, uploads or copies (server-side within one store), each verified
    like a single transfer. ``source_listing`` (from FerryBulkPlanOperator) replaces the listing
    with one shard's.

    Filters (templated): ``include`` (glob on the relative key), ``regex``, ``min_size``,
    ``max_size``, ``modified_since`` (ISO 8601 with a zone). ``concurrency`` objects at once,
    ``max_connections`` for all together. ``manifest`` (path or URL; CSV with gsutil's header, or
    JSON lines for ``.jsonl``) gets a row per object as it finishes; a retried task given the same
    manifest skips the rows already ``OK``/``skip``. ``size_only`` treats an existing destination
    of the same size as identical. A failed object is an ``error`` row and the rest go on; with
    ``fail_on_error`` (default) the task fails at the end when any row is ``error``.

    XCom: a summary (counts and bytes per result, the manifest's location, the ``worker`` that
    ran the task: the task instance's hostname) with the first ``row_limit`` rows, so XCom stays
    small whatever the number of objects; also pushed as ``bulk_summary`` when the task fails.

    Takes the arguments of FerryTransferOperator, which apply to each object, except
    ``manifest_path``, ``expected_digests`` and ``expected_size``, which are refused (use
    ``manifest``; expectations describe one object). Here ``source`` and ``destination`` are
    prefixes or local folders (one side may be local, not both), ``parallelism`` is how many
    connections one object larger than 8 MiB may take (32 when unset; the link does not choose
    here), and ``state_dir`` also holds the local spool of an object-URL ``manifest``. Plus:

    :param source_conn_id: Connection for the source side (templated); wins over ``conn_id``.
        Default ``None``: ``conn_id``.
    :param destination_conn_id: Connection for the destination side (templated), also used to
        write an object-URL ``manifest``; wins over ``conn_id``. Default ``None``: ``conn_id``.
    :param source_listing: Path or URL of one shard's listing (templated), as FerryBulkPlanOperator
        writes it: those objects are transferred instead of a listing of ``source``. The planner
        filtered it, so giving this operator filters as well is refused. Default ``None``:
        ``source`` is listed.
    :param listing_conn_id: Connection that reads ``source_listing`` (templated); the planner's
        output sets it to the connection that wrote the listing. Default ``None``: the source's.
    :param include: Glob matched against each object's key relative to ``source`` (templated);
        ``*`` and ``?`` stay within one path segment, ``**`` spans segments. Default: every key.
    :param regex: Python regular expression searched for anywhere in the relative key (templated);
        an invalid one fails the task. Default: every key.
    :param min_size: Smallest object size taken, in bytes, inclusive (templated; text is converted
        to a number). Default: no minimum.
    :param max_size: Largest object size taken, in bytes, inclusive (templated). Default: no maximum.
    :param modified_since: Only objects last modified at or after this moment (templated): a
        timezone-aware datetime, or ISO 8601 text with a zone (``Z`` accepted). Objects whose
        listing gives no modification time are left out. Default: no limit.
    :param concurrency: Objects transferred at once, a whole number >= 1. Default ``None``: chosen
        by the link, starting with 16 and doubling up to 64 while the rate grows (a link with a
        long round trip needs more objects in flight; loopback does not).
    :param max_connections: Connections all objects in flight share, a whole number >= 1; an object
        of up to 8 MiB takes one, a larger one up to ``parallelism``, all of them before it starts.
        Default ``None``: twice ``concurrency`` or the resolved ``parallelism``, whichever is more;
        64 when the link chooses the concurrency.
    :param manifest: Local path or object URL receiving one row per object as it finishes
        (templated): CSV with gsutil's header, or JSON lines when the name ends in ``.jsonl`` or
        ``.json``. A rerun given the same manifest skips the objects it lists as ``OK`` or ``skip``
        without a request. An object URL is spooled locally and uploaded when the run ends.
        Default ``None``: no manifest.
    :param size_only: When ``True``, an existing destination of the same size is a ``skip`` row
        without comparing digests (for stores with no digest in common). Default ``False``.
    :param fail_on_error: When ``True`` (default), the task fails at the end if any object's row is
        ``error`` (the others have still run); ``False`` returns the summary and succeeds.
    :param row_limit: Rows the XCom summary carries, a whole number >= 0 (default 100); the counts
        always cover every object. Also bounds the objects reported to OpenLineage.
    :param file_mode: Downloads only: the permission bits each file gets, as for
        FerryDownloadOperator (checked when the DAG is parsed). Default ``None``: 0666 less the umask.
    :param server_side: Copies only: ``"auto"`` (default) or ``"never"``, as for FerryCopyOperator;
        checked when the DAG is parsed.
    """

    template_fields: Sequence[str] = (
        *FerryTransferOperator.template_fields,
        "source_conn_id",
        "destination_conn_id",
        "source_listing",
        "listing_conn_id",
        "manifest",
        *FILTER_FIELDS,
    )

    def __init__(
        self,
        *,
        source_conn_id: str | None = None,
        destination_conn_id: str | None = None,
        source_listing: str | None = None,
        listing_conn_id: str | None = None,
        include: str | None = None,
        regex: str | None = None,
        min_size: int | str | None = None,
        max_size: int | str | None = None,
        modified_since: datetime | str | None = None,
        concurrency: int | None = None,
        max_connections: int | None = None,
        manifest: str | None = None,
        size_only: bool = False,
        fail_on_error: bool = True,
        row_limit: int = 100,
        file_mode: int | None = None,
        server_side: str = "auto",
        **kwargs: Any,
    ) -> None:
        if kwargs.get("manifest_path"):
            raise InvalidArgumentError("FerryBulkTransferOperator takes manifest= (a path or URL), not manifest_path")
        if kwargs.get("expected_digests") or kwargs.get("expected_size") is not None:
            raise InvalidArgumentError("expected_digests and expected_size apply to single objects, not to a prefix")
        super().__init__(**kwargs)
        self.source_conn_id = source_conn_id
        self.destination_conn_id = destination_conn_id
        self.source_listing = source_listing
        self.listing_conn_id = listing_conn_id
        self.include, self.regex = include, regex
        self.min_size, self.max_size, self.modified_since = min_size, max_size, modified_since
        _check_filters_when_parsed(self)
        self.concurrency = concurrency
        self.max_connections = max_connections
        self.manifest = manifest
        self.size_only = size_only
        self.fail_on_error = fail_on_error
        self.row_limit = row_limit
        self.file_mode = file_mode
        self.server_side = server_side
        # Untemplated values are checked when the DAG is parsed.
        BulkOptions(
            concurrency=concurrency,
            max_connections=max_connections,
            row_limit=row_limit,
            server_side=server_side,
            file_mode=file_mode,
        )
        filters = (include, regex, min_size, max_size, modified_since)
        given = [name for name, value in zip(FILTER_FIELDS, filters, strict=True) if value is not None]
        if source_listing is not None and given:
            # A shard's listing was filtered by the planner; filtering it again here would be a
            # second, silent selection.
            raise InvalidArgumentError(
                f"{', '.join(given)}: a shard's source_listing is already filtered; give filters to "
                "FerryBulkPlanOperator"
            )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the two prefixes, plus each object of the summary's rows (at most
        ``row_limit``: a listing of a million keys is not a lineage graph anyone can read)."""
        from ferry_provider.operators.lineage import operator_lineage

        rows = (getattr(self, "_summary", None) or {}).get("rows", [])
        ok = [r for r in rows if r["result"] in ("OK", "skip")]
        return operator_lineage(
            [self.source, *(r["source"] for r in ok)], [self.destination, *(r["destination"] for r in ok)]
        )

    def execute(self, context: Context) -> dict[str, Any]:
        source_conn = self.source_conn_id or self.conn_id
        destination_conn = self.destination_conn_id or self.conn_id
        try:
            options = BulkOptions(
                **self.common_options(),
                concurrency=self.concurrency,
                max_connections=self.max_connections,
                only=_filter(self),
                manifest=self.manifest or None,
                size_only=self.size_only,
                row_limit=self.row_limit,
                file_mode=self.file_mode,
                server_side=self.server_side,
            )
            source_hook = self.open_hook(self.source, source_conn, options.connections)
            destination_hook = self.open_hook(self.destination, destination_conn, options.connections)
            listing_conn = self.listing_conn_id or source_conn
            listing = parse_listing(_read(self.source_listing, listing_conn)) if self.source_listing else None
            summary = bulk_transfer(
                source_hook,
                destination_hook,
                self.source,
                self.destination,
                options,
                listing=listing,
                manifest_hook=lambda url: self.open_hook(url, destination_conn, 4),
            )
        except (FerryError, OSError, ValueError, TypeError) as exc:
            message = f"{self.source} -> {self.destination} failed{self.connections()}: {exc}"
            self.log.error("%s", message)
            self.log.debug("what failed, in full", exc_info=exc)
            if isinstance(exc, (InvalidArgumentError, ValueError, TypeError)):
                raise AirflowFailException(message) from None
            raise AirflowException(message) from None
        return self._report(context, summary)

    def _report(self, context: Context, summary: BulkSummary) -> dict[str, Any]:
        self.log.info("%s -> %s: %s", summary.source, summary.destination, summary.line())
        for row in summary.rows:
            if row["result"] == "error":
                self.log.warning("%s -> %s: %s", row["source"], row["destination"], row["description"])
        result = self._summary = summary.to_dict()
        result["worker"] = _worker(context)
        if not summary.errors:
            extra = {"source": summary.source, "counts": result["counts"], "manifest": summary.manifest}
            emit_asset_events(context, self.outlets, summary.destination, extra)
        if summary.errors and self.fail_on_error:
            context["ti"].xcom_push(key="bulk_summary", value=result)
            where = f"; rows in {summary.manifest}" if summary.manifest else ""
            raise AirflowException(f"{summary.errors} object(s) failed{self.connections()}: {summary.line()}{where}")
        return result


class FerryBulkPlanOperator(BaseOperator):
    """List ``source`` once and cut it into at most ``max_shards`` balanced shards (by bytes and
    object count; ``min_shard_weight`` bytes at least, 256 MiB by default, each object counting 1 MiB on top of its
    size). Each shard's listing is written under ``listing_location`` (a folder, local or
    object URL); the return value is one dict of FerryBulkTransferOperator arguments per shard
    (``source_listing``, and ``manifest`` under ``manifest_location`` when given), ready for
    ``.expand_kwargs()``.

    :param source: Prefix or local folder to list (templated), as given to the transfer tasks.
    :param listing_location: Folder, local or an object URL, that receives the shard listings
        ``shard-00000.jsonl``, ``shard-00001.jsonl``... (templated).
    :param conn_id: Connection used to list ``source`` (templated). Default ``None``: the store's
        default connection.
    :param listing_conn_id: Connection used to write the listings (templated). Default ``None``:
        ``conn_id``.
    :param manifest_location: Folder, local or an object URL, under which each shard is given a
        manifest ``shard-NNNNN.csv`` (templated). Default ``None``: the shards get no ``manifest``.
    :param max_shards: Most shards to cut, from 1 to 1024 (default 1024); fewer are cut when there
        are fewer objects or too little weight. Other values are refused when the DAG is parsed.
    :param min_shard_weight: Least weight of a shard, in bytes, each object weighing its size plus
        1 MiB. Default ``None``: 256 MiB.
    :param include: Glob on the key relative to ``source`` (templated), as for
        FerryBulkTransferOperator. Default: every key.
    :param regex: Regular expression searched for in the relative key (templated). Default: every key.
    :param min_size: Smallest object size listed, in bytes, inclusive (templated). Default: no minimum.
    :param max_size: Largest object size listed, in bytes, inclusive (templated). Default: no maximum.
    :param modified_since: Only objects last modified at or after this moment (templated; a
        timezone-aware datetime or ISO 8601 text with a zone). Default: no limit.
    """

    template_fields: Sequence[str] = (
        "source",
        "conn_id",
        "listing_location",
        "listing_conn_id",
        "manifest_location",
        *FILTER_FIELDS,
    )

    def __init__(
        self,
        *,
        source: str,
        listing_location: str,
        conn_id: str | None = None,
        listing_conn_id: str | None = None,
        manifest_location: str | None = None,
        max_shards: int = MAX_SHARDS,
        min_shard_weight: int | None = None,
        include: str | None = None,
        regex: str | None = None,
        min_size: int | str | None = None,
        max_size: int | str | None = None,
        modified_since: datetime | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= max_shards <= MAX_SHARDS:
            raise InvalidArgumentError(f"max_shards must be between 1 and {MAX_SHARDS}, got {max_shards}")
        self.source = source
        self.conn_id = conn_id
        self.listing_location = listing_location
        self.listing_conn_id = listing_conn_id
        self.manifest_location = manifest_location
        self.max_shards = max_shards
        self.min_shard_weight = min_shard_weight
        self.include, self.regex = include, regex
        self.min_size, self.max_size, self.modified_since = min_size, max_size, modified_since
        _check_filters_when_parsed(self)

    def execute(self, context: Context) -> list[dict[str, str]]:
        source_hook = hook_for(self.source, self.conn_id)
        shards = plan_shards(
            source_hook,
            self.source,
            self.listing_location,
            write_to(lambda url: hook_for(url, self.listing_conn_id or self.conn_id)),
            only=_filter(self),
            max_shards=self.max_shards,
            min_shard_weight=self.min_shard_weight,
        )
        self.log.info(
            "%s: %d object(s), %d bytes, in %d shard(s)",
            self.source,
            sum(s.objects for s in shards),
            sum(s.bytes for s in shards),
            len(shards),
        )
        out = []
        for index, shard in enumerate(shards):
            kwargs = {"source_listing": shard.listing, "listing_conn_id": self.listing_conn_id or self.conn_id}
            if self.manifest_location:
                kwargs["manifest"] = f"{self.manifest_location.rstrip('/')}/shard-{index:05d}.csv"
            out.append(kwargs)
        return out


def _by_shard(summaries: Sequence[dict[str, Any]] | str) -> list[dict[str, Any]]:
    """One line per shard from the mapped tasks' summaries: who ran it and what it did."""
    if isinstance(summaries, str):
        summaries = ast.literal_eval(summaries)  # a templated xcom_pull arrives as its text
    return [
        {"shard": index, "worker": None, "missing": "no summary: the shard's task did not finish"}
        if not s
        else {
            "shard": index,
            "worker": s.get("worker"),
            "objects": sum(s["counts"].values()),
            "already_done": s.get("already_done", 0),
            "bytes_transferred": sum(s["bytes_transferred"].values()),
            "counts": s["counts"],
            "manifest": s.get("manifest"),
        }
        for index, s in enumerate(summaries)
    ]


class FerryManifestMergeOperator(BaseOperator):
    """Join the shards' manifests (``manifests``: a list of locations, or the planner's output,
    whose ``manifest`` entries are taken) into ``destination`` (optional) and return the summary:
    object count, counts and bytes per result. ``fail_on_error`` fails the task when any row is
    ``error`` (after writing the merged manifest). Given the shards' own summaries
    (``shard_summaries=move.output``), the summary also has ``by_shard``: per shard, the worker
    that ran it, its counts and bytes.

    :param manifests: The shard manifests (templated): a list of local paths or object URLs, a list
        of dicts whose ``manifest`` entry is taken (FerryBulkPlanOperator's output), or the text of
        such a list as a template renders it. A manifest that does not exist is logged and skipped.
    :param destination: Local path or object URL for the merged manifest (templated); JSON lines
        when the name ends in ``.jsonl`` or ``.json``, else CSV. Default ``None``: nothing is
        written, only the summary is returned.
    :param conn_id: Connection used to read the manifests and write ``destination`` (templated).
        Default ``None``: each store's default connection.
    :param fail_on_error: When ``True``, the task fails if any merged row is ``error``, after the
        merged manifest is written. Default ``False``.
    :param spool_dir: Directory where a merged manifest bound for an object URL is spooled before
        the upload. Default ``None``: the system's temporary directory.
    :param shard_summaries: The mapped FerryBulkTransferOperator tasks' return values, in shard
        order (templated): ``move.output``, or the text of such a list as a template renders it.
        Default ``None``: the summary has no ``by_shard``.
    """

    template_fields: Sequence[str] = ("manifests", "destination", "conn_id", "shard_summaries")

    def __init__(
        self,
        *,
        manifests: Sequence[str | dict[str, str]] | str,
        destination: str | None = None,
        conn_id: str | None = None,
        fail_on_error: bool = False,
        spool_dir: str | None = None,
        shard_summaries: Sequence[dict[str, Any]] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shard_summaries = shard_summaries
        self.spool_dir = spool_dir  # where a remote destination is spooled (default: the system's temp folder)
        self.manifests = manifests
        self.destination = destination
        self.conn_id = conn_id
        self.fail_on_error = fail_on_error

    def _locations(self) -> list[str]:
        items = self.manifests
        if isinstance(items, str):
            import ast

            items = ast.literal_eval(items)  # a templated xcom_pull arrives as its text
        return [item["manifest"] if isinstance(item, dict) else item for item in items]  # type: ignore[union-attr]

    def _texts(self, locations: list[str]) -> Iterator[str]:
        for location in locations:
            try:
                yield _read(location, self.conn_id)
            except (NotFoundError, FileNotFoundError):
                self.log.warning("%s: no manifest (the shard wrote no row)", location)

    def execute(self, context: Context) -> dict[str, Any]:
        locations = self._locations()
        fmt = format_of(self.destination or "merged.csv")
        if not self.destination:
            summary = merge_manifests(self._texts(locations))
        elif parse_url(self.destination).is_local:
            with open(parse_url(self.destination).key, "wb") as out:
                summary = merge_manifests(self._texts(locations), out, fmt)
        else:
            # Spooled on local disk, not held in memory: a merged manifest can be large.
            with tempfile.TemporaryFile(prefix="ferry-merge-", dir=self.spool_dir) as out:
                summary = merge_manifests(self._texts(locations), out, fmt)
                size = out.tell()
                out.seek(0)
                hook = hook_for(self.destination, self.conn_id)
                hook.put(self.destination, out, size=size, content_type=content_type_of(fmt))
        summary["manifest"] = self.destination
        summary["shards"] = len(locations)
        if self.shard_summaries is not None:
            summary["by_shard"] = _by_shard(self.shard_summaries)
        self.log.info("%d shard manifest(s): %s", len(locations), summary)
        if self.fail_on_error and summary["counts"]["error"]:
            raise AirflowException(f"{summary['counts']['error']} object(s) failed; merged manifest {self.destination}")
        return summary
