"""Bulk transfers: every object under a prefix, each by the right single-object engine.

The source prefix is listed page by page (never whole in memory); each object becomes a download
(remote -> local folder), an upload (local folder -> store) or a copy (store -> store), run by the
same engines as single transfers, with the same checks, skips and resume. Many small objects run
at once; large ones take several connections; one budget bounds the connections of all of them.
One manifest row per object is written as it finishes, so a crash loses no finished row, and a
rerun given the same manifest skips what it already lists as ``OK`` or ``skip``. A failed object
is an ``error`` row and the others go on; the caller decides what a failure means at the end.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ferry_provider.hooks.base import ObjectInfo, StorageHook
from ferry_provider.hooks.errors import FerryError, InvalidArgumentError, NotFoundError
from ferry_provider.hooks.url import ObjectURL, parse_url, redact
from ferry_provider.transfer import checksums
from ferry_provider.transfer.copy import PIPELINE_MEMORY, PIPELINE_PART, CopyOptions, copy
from ferry_provider.transfer.download import DownloadOptions, download
from ferry_provider.transfer.extraneous import extraneous, place
from ferry_provider.transfer.file_mode import publish_mode
from ferry_provider.transfer.interrupt import Interrupted
from ferry_provider.transfer.link_controller import START, LinkController
from ferry_provider.transfer.listing import Listed, ListFilter, folder, list_prefix
from ferry_provider.transfer.local_names import local_destination
from ferry_provider.transfer.manifest import ERROR, OK, SKIP, ManifestRow, TransferError, now
from ferry_provider.transfer.manifest_file import ManifestWriter, done_keys, read_manifest, row_key
from ferry_provider.transfer.options import TransferOptions
from ferry_provider.transfer.plan import MiB
from ferry_provider.transfer.sinks import is_component
from ferry_provider.transfer.upload import UploadOptions, upload

log = logging.getLogger("ferry_provider.transfer")

# Objects up to this size go in one request on one connection, and a download takes what the
# listing said of them instead of a HEAD: the per-object cost is what decides small-object speed.
SMALL_OBJECT = 8 * MiB
# Objects in flight when the link chooses (concurrency unset): from the controller's start (16)
# up to this many. Through a link adding 50 ms to each request, 2,000 objects of 64 KiB moved at
# 257 objects/s with 16 in flight and 519 with 64; on loopback more than 16 gain nothing.
MOST_OBJECTS_IN_FLIGHT = 64
# ...and down to this many when 16 already use the machine (see link_controller): on loopback,
# 5,000 objects of 64 KiB moved 10-20 % faster with 4 in flight than with 16, and 2 were slower.
FEWEST_IN_FLIGHT = 4
# An upload or copy looks up its first objects at the destination one by one (a HEAD each); once
# more follow, it lists the destination once, and objects the listing does not show skip their
# lookup. A few objects into a big prefix never pay for listing it.
LIST_DESTINATION_AFTER = 32
# Past this many keys the listing is dropped: holding it costs memory and its pages may outnumber
# the objects to send.
DESTINATION_KEYS_LIMIT = 50_000


@dataclass(frozen=True)
class BulkOptions(TransferOptions):
    """Bulk options. ``concurrency``: objects in flight (None: chosen by the link, 16 to 64);
    ``max_connections``: connections for all of them together (default: twice the concurrency,
    64 when the link chooses it); a large object takes up to ``parallelism`` of them.
    ``manifest``: a local path or an object URL (CSV with gsutil's header, or JSON lines for
    ``.jsonl``); a rerun with the same manifest skips what it lists as ``OK``/``skip``.
    ``size_only``: an existing destination of the same size counts as identical (for stores
    with no digest in common). ``row_limit``: how many rows the summary carries."""

    concurrency: int | None = None
    max_connections: int | None = None
    only: ListFilter = field(default_factory=ListFilter)
    manifest: str | None = None
    manifest_format: str | None = None
    size_only: bool = False
    row_limit: int = 100
    file_mode: int | None = None  # downloads: the files' mode
    server_side: str = "auto"  # copies: as CopyOptions

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.concurrency is not None and (not isinstance(self.concurrency, int) or self.concurrency < 1):
            raise InvalidArgumentError(f"concurrency must be a whole number >= 1, got {self.concurrency!r}")
        if self.max_connections is not None and (not isinstance(self.max_connections, int) or self.max_connections < 1):
            raise InvalidArgumentError(f"max_connections must be a whole number >= 1, got {self.max_connections!r}")
        if not isinstance(self.row_limit, int) or self.row_limit < 0:
            raise InvalidArgumentError(f"row_limit must be a whole number >= 0, got {self.row_limit!r}")
        # Checked here, once, rather than failing every object of the prefix as an error row.
        CopyOptions(server_side=self.server_side)
        DownloadOptions(file_mode=self.file_mode)
        # Expectations describe one object; across a prefix they could only be wrong.
        if self.expected_digests or self.expected_size is not None:
            raise InvalidArgumentError("expected_digests and expected_size apply to single objects, not to a prefix")

    @property
    def connections(self) -> int:
        if self.max_connections:
            return self.max_connections
        if self.concurrency:
            return max(2 * self.concurrency, self.parallelism)
        return max(MOST_OBJECTS_IN_FLIGHT, 2 * self.parallelism)

    @property
    def most_in_flight(self) -> int:
        """How many objects may ever be in flight: the concurrency, else the link's maximum
        (no more than there are connections for)."""
        return self.concurrency or min(MOST_OBJECTS_IN_FLIGHT, self.connections)


@dataclass
class BulkSummary:
    """Counts and bytes per result, the manifest's location, and the first rows (row_limit)."""

    source: str
    destination: str
    counts: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    already_done: int = 0  # listed as OK/skip in the manifest by an earlier run: not looked at
    deleted: int = 0  # destination objects removed because the source has them no more (sync)
    manifest: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    rows_truncated: bool = False
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return self.counts[ERROR]

    def add(self, row: ManifestRow, row_limit: int) -> None:
        self.counts[row.result] += 1
        self.bytes[row.result] += row.bytes_transferred
        if len(self.rows) < row_limit:
            self.rows.append(row.to_dict())
        else:
            self.rows_truncated = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "counts": {k: self.counts[k] for k in (OK, SKIP, ERROR)},
            "bytes_transferred": {k: self.bytes[k] for k in (OK, SKIP, ERROR)},
            "already_done": self.already_done,
            "deleted": self.deleted,
            "manifest": self.manifest,
            "rows": self.rows,
            "rows_truncated": self.rows_truncated,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        c = self.counts
        moved = sum(self.bytes.values())
        return (
            f"{c[OK]} OK, {c[SKIP]} skipped, {c[ERROR]} failed"
            + (f", {self.already_done} already done" if self.already_done else "")
            + (f", {self.deleted} deleted at the destination" if self.deleted else "")
            + f"; {moved} bytes moved in {self.seconds:.1f}s"
        )


class ConnectionBudget:
    """A pool of connection slots; an object takes all the slots it needs at once or waits, so
    two large objects can never each hold half of what both need."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._free = total
        self._changed = threading.Condition()

    def take(self, n: int) -> int:
        n = max(1, min(n, self.total))
        with self._changed:
            self._changed.wait_for(lambda: self._free >= n)
            self._free -= n
        return n

    def give_back(self, n: int) -> None:
        with self._changed:
            self._free += n
            self._changed.notify_all()


def bulk_transfer(
    source_hook: StorageHook,
    destination_hook: StorageHook,
    source: str,
    destination: str,
    options: BulkOptions | None = None,
    *,
    listing: Iterable[Listed] | None = None,
    on_row: Callable[[ManifestRow], None] | None = None,
    manifest_hook: Callable[[str], StorageHook] | None = None,
    delete_extraneous: bool = False,
) -> BulkSummary:
    """Transfer every object under ``source`` to the same relative key under ``destination``.

    ``listing`` replaces the listing of ``source`` (a shard planned elsewhere). ``on_row`` sees
    each row as it is written. ``manifest_hook`` opens the store of an object-URL manifest.
    ``delete_extraneous`` (sync) then removes destination objects the filtered source does not
    have, and only when every object succeeded. Failed objects are ``error`` rows in the
    summary; nothing is raised for them.
    """
    bulk = _Bulk(source_hook, destination_hook, source, destination, options or BulkOptions(), manifest_hook)
    if delete_extraneous and listing is not None:
        raise InvalidArgumentError("delete_extraneous needs the whole source listed, not a shard of it")
    summary = bulk.run(listing, on_row, keep_keys=delete_extraneous)
    if delete_extraneous:
        if summary.errors:
            log.warning(
                "%s: %d object(s) failed: nothing deleted at the destination", summary.destination, summary.errors
            )
        elif not bulk.source_keys:
            log.warning(
                "%s lists no object%s: nothing deleted at the destination (a mistyped prefix looks the same "
                "as an empty one on an object store; delete the objects yourself if that is meant)",
                summary.source,
                " the name filters admit" if bulk.opts.only.glob or bulk.opts.only.regex else "",
            )
        else:
            summary.deleted = bulk.delete_extraneous()
    return summary


class _Bulk:
    def __init__(
        self,
        source_hook: StorageHook,
        destination_hook: StorageHook,
        source: str,
        destination: str,
        opts: BulkOptions,
        manifest_hook: Callable[[str], StorageHook] | None,
        *,
        dry_run: bool = False,
    ) -> None:
        self.src_hook = source_hook
        self.dst_hook = destination_hook
        self.opts = opts
        self.src = folder(source)
        self.dst = folder(destination)
        source_hook.parse(self.src)
        destination_hook.parse(self.dst)
        if self.src.is_local and self.dst.is_local:
            raise InvalidArgumentError("both prefixes are local folders: ferry moves data to, from or between stores")
        if not self.dst.is_local and not destination_hook.capabilities.writable:
            raise InvalidArgumentError(f"destination {self.dst.raw}: this store is read-only")
        if source_hook.same_endpoint(destination_hook) and _overlap(self.src, self.dst):
            raise InvalidArgumentError(
                f"source {self.src.raw} and destination {self.dst.raw} overlap: objects would be copied onto themselves"
            )
        if self.src.is_local and not os.path.isdir(self.src.key):
            raise NotFoundError(f"source folder {self.src.key} does not exist", url=self.src.key)
        if self.dst.is_local and not dry_run:
            os.makedirs(self.dst.key, exist_ok=True)
        # Resolved once for the run rather than for every object.
        self._real_root = os.path.realpath(self.dst.key) if self.dst.is_local else ""
        self._file_mode = publish_mode(opts.file_mode)
        self.kind = "download" if self.dst.is_local else "upload" if self.src.is_local else "copy"
        # A copy between stores holds each object's bytes, up to a part, in this process: the link
        # may not raise the objects in flight past 16 (16 x 8 MiB), nor a large object's
        # connections past a single copy's (PIPELINE_MEMORY of parts).
        server_side = opts.server_side != "never" and source_hook.same_store(destination_hook)
        self.through_worker = self.kind == "copy" and not server_side
        self.budget = ConnectionBudget(opts.connections)
        self.summary = BulkSummary(redact(self.src.raw), redact(self.dst.raw), manifest=opts.manifest)
        self.manifest = (
            ManifestWriter(opts.manifest, fmt=opts.manifest_format, hook_for=manifest_hook, state_dir=opts.state_dir)
            if opts.manifest and not dry_run
            else None
        )
        self._lock = threading.Lock()
        self._closed = False
        self._link: LinkController | None = None  # objects in flight chosen by the link
        self._in_flight: dict[int, ManifestRow] = {}  # thread id -> the row of the object it moves
        self.source_keys: set[bytes] = set()  # sync --delete: every key the source lists (row_key)
        self._staff = threading.Lock()  # guards the workers: who was hired, how many still work
        self._workers: list[threading.Thread] = []
        self._working = 0
        self._fed_all = False
        self._common = {f.name: getattr(opts, f.name) for f in fields(TransferOptions)}
        self._options: dict[int, DownloadOptions | UploadOptions | CopyOptions] = {}

    def objects_in_flight(self) -> int:
        """The most objects in flight at once (the link chooses how many of them move)."""
        if self.through_worker and self.opts.concurrency is None:
            return min(self.opts.most_in_flight, START)
        return self.opts.most_in_flight

    def connections_for(self, size: int) -> int:
        """Connections an object of ``size`` bytes asks of the budget."""
        if size <= SMALL_OBJECT:
            return 1
        if self.through_worker and self.opts.adaptive:
            return min(self.opts.parallelism, PIPELINE_MEMORY // PIPELINE_PART)
        return self.opts.parallelism

    # -- the run -----------------------------------------------------------------------------
    def run(
        self, listing: Iterable[Listed] | None, on_row: Callable[[ManifestRow], None] | None, keep_keys: bool = False
    ) -> BulkSummary:
        started = time.monotonic()
        self._on_row = on_row
        if keep_keys:
            items = self._remembered(list_prefix(self.src_hook, self.src, self.opts.only.names_only()))
        else:
            items = listing if listing is not None else list_prefix(self.src_hook, self.src, self.opts.only)
        items = self._data(items)
        most = self.objects_in_flight()
        work: queue.Queue[tuple[Listed, bool] | None] = queue.Queue(maxsize=2 * most)
        in_flight = self._in_flight
        if self.opts.concurrency is None:  # the link decides how many objects are in flight
            self._link = LinkController(
                start=min(START, most),
                maximum=most,
                fewest=FEWEST_IN_FLIGHT,
                window_bytes=1 << 20,  # objects report whole: a window is judged by its 0.2 s and its rounds
                cores=os.cpu_count() or 1,
                what="objects in flight",
            )
            self._link.on_change(lambda: self._hire(work))
        self._hire(work)
        try:
            interrupted = False
            try:
                fed = 0
                there: set[bytes] | None = None  # the destination's keys, once listed
                for item in items:
                    if self._already_done(item):
                        continue
                    if fed == LIST_DESTINATION_AFTER and self.kind != "download":
                        there = self._destination_keys()
                    # Decided here, in order, so what an object does depends on nothing but its place.
                    work.put((item, there is not None and row_key(item.relative, "") not in there))
                    fed += 1
            except Interrupted:
                interrupted = True
                raise
            finally:
                # After a signal nothing is awaited: the queue may be full and the objects in
                # flight stalled (that may be why the signal came).
                if not interrupted:
                    with self._staff:
                        self._fed_all = True  # no worker is hired from now on
                        working = self._working
                    for _ in range(working):
                        work.put(None)
                    for worker in list(self._workers):
                        while worker.is_alive():
                            worker.join(0.2)  # short waits: a signal is raised between them
        except Interrupted as exc:
            with self._lock:
                for row in list(in_flight.values()):
                    self._record(row.finish(ERROR, f"{exc} before this object finished; a rerun resumes it"))
                self._closed = True  # objects still finishing in the background write no second row
            raise
        except (FerryError, OSError) as exc:  # the listing itself failed: the objects not reached have no row
            raise FerryError(
                f"{self.src.raw}: listing failed after {sum(self.summary.counts.values())} object(s): {exc}"
            ) from exc
        finally:
            self.summary.seconds = time.monotonic() - started
            if self.manifest is not None:
                self.manifest.close()
        log.info("%s -> %s: %s", self.summary.source, self.summary.destination, self.summary.line())
        return self.summary

    def _destination_keys(self) -> set[bytes] | None:
        """What is at the destination now, listed once; None when there is too much to hold or it
        cannot be listed (a key allowed to write and not to list): every object then looks itself
        up. An object written there after this listing is overwritten unless no_clobber is set,
        which stays a conditional write."""
        keys: set[bytes] = set()
        try:
            for item in list_prefix(self.dst_hook, self.dst):
                if len(keys) == DESTINATION_KEYS_LIMIT:
                    log.info("%s: more than %d objects; each is looked up", self.dst.raw, DESTINATION_KEYS_LIMIT)
                    return None
                keys.add(row_key(item.relative, ""))
        except FerryError as exc:
            log.info("%s: not listed (%s); each object is looked up", self.dst.raw, exc)
            return None
        return keys

    def _remembered(self, items: Iterable[Listed]) -> Iterator[Listed]:
        """From a listing filtered by name only: a compact key (16 bytes) of every object, for
        delete_extraneous; on to the transfer, those the whole filter admits (see extraneous)."""
        only = self.opts.only
        for item in items:
            self.source_keys.add(row_key(item.relative, ""))
            if only.matches(item.relative, item.info):
                yield item

    def _data(self, items: Iterable[Listed]) -> Iterator[Listed]:
        """The listed objects, without this run's own manifest (when kept under the source) and
        Ferry's temporary upload components: neither is data to transfer."""
        manifest = self.opts.manifest
        where = place(manifest) if manifest else None
        name = os.path.basename(manifest.rstrip("/")) if manifest else None
        for item in items:
            url = item.info.url
            # Resolved only for a name like the manifest's: a local path's costs a few stats.
            if is_component(url) or (name and url.endswith(name) and place(url) == where):
                log.info("%s: Ferry's own file, not transferred", redact(url))
                continue
            yield item

    def extraneous(self) -> Iterator[Listed]:
        """Destination objects the source does not have (see the extraneous module)."""
        listing = list_prefix(self.dst_hook, self.dst, self.opts.only.names_only())
        return extraneous(listing, self.source_keys, self.dst, self.opts.manifest)

    def delete_extraneous(self) -> int:
        """Delete what ``extraneous`` gives; a deletion that fails does not stop the others, and
        the first failure is raised at the end."""
        deleted = 0
        failures: list[FerryError] = []
        for item in self.extraneous():
            url = item.info.url
            try:
                self.opts.retry.run(lambda u=url: self.dst_hook.delete(u), what=f"{redact(url)}: delete")
            except FerryError as exc:
                log.warning("%s: not deleted: %s", redact(url), exc)
                failures.append(exc)
                continue
            log.info("%s: deleted (not at the source)", redact(url))
            deleted += 1
        if failures:
            raise FerryError(f"{len(failures)} deletion(s) failed at the destination, the first: {failures[0]}")
        return deleted

    def _already_done(self, item: Listed) -> bool:
        if self.manifest is None or not self.manifest.done:
            return False
        source, destination = self._ends(item, quiet=True)
        if row_key(source, destination or "") in self.manifest.done:
            self.summary.already_done += 1
            return True
        return False

    def _hire(self, work: queue.Queue[tuple[Listed, bool] | None]) -> None:
        """As many workers as objects may be in flight: the concurrency, or the link's level.
        Threads are started as the level rises, not all up front: each one that has moved an
        object keeps its buffers, and idle ones waiting their turn cost CPU on a busy machine
        (on loopback, 64 threads gated down to 16 moved 10 % fewer objects a second)."""
        with self._staff:
            level = self._link.limit if self._link is not None else self.objects_in_flight()
            while not self._fed_all and self._working < level:
                worker = threading.Thread(
                    target=self._worker, args=(work,), name=f"ferry-bulk-{len(self._workers)}", daemon=True
                )
                # Daemon threads: after a signal the process may exit without waiting for
                # objects in flight, which keep their resumable state as after a kill.
                self._workers.append(worker)
                self._working += 1
                worker.start()

    def _worker(self, work: queue.Queue[tuple[Listed, bool] | None]) -> None:
        while True:
            with self._staff:
                if self._link is not None and self._working > self._link.limit:
                    self._working -= 1  # the link lowered the level: one worker fewer
                    return
            job = work.get()
            if job is None:
                with self._staff:
                    self._working -= 1
                return
            self._move(job)

    def _move(self, job: tuple[Listed, bool]) -> None:
        """One object, start to row."""
        item, absent = job
        in_flight = self._in_flight
        me = threading.get_ident()
        source, destination = self._ends(item, quiet=True)
        in_flight[me] = ManifestRow(source=source, destination=destination or "", start=now())
        try:
            row = self._one(item, absent, source, destination)
        except BaseException as exc:  # a defect must still be a row, and the run go on
            log.debug("unexpected failure on %s", source, exc_info=True)
            row = in_flight[me].finish(ERROR, f"{type(exc).__name__}: {exc}")
        with self._lock:
            in_flight.pop(me, None)
            self._record(row)
        if self._link is not None:
            self._link.observe(row.bytes_transferred or 0)

    def _record(self, row: ManifestRow) -> None:
        """One row: to the manifest, the summary and the caller (the caller holds the lock)."""
        if self._closed:
            return
        if self.manifest is not None:
            self.manifest.write(row)
        self.summary.add(row, self.opts.row_limit)
        if self._on_row is not None:
            try:
                self._on_row(row)
            except Exception as exc:  # the caller's hook failing must not stop a worker, nor lose rows
                log.warning("the row callback failed (%s: %s); it is called no more", type(exc).__name__, exc)
                self._on_row = None

    # -- one object --------------------------------------------------------------------------
    def _ends(self, item: Listed, *, quiet: bool = False) -> tuple[str, str | None]:
        """The row's source and destination for ``item``; the destination None when the key
        cannot be one (quiet), else that is an InvalidArgumentError."""
        source = redact(item.info.url)
        try:
            if self.dst.is_local:
                return source, local_destination(self.dst.key, item.relative, self._real_root)
            return source, self.dst.raw + item.relative
        except InvalidArgumentError:
            if quiet:
                return source, None
            raise

    def _one(self, item: Listed, absent: bool, source: str, destination: str | None) -> ManifestRow:
        """``absent``: the destination listing showed nothing at this key; ``source`` and
        ``destination`` as ``_ends`` gave them (quietly)."""
        if item.relative.endswith("/") and not item.info.size:
            row = ManifestRow(source=source, destination=destination or "", start=now(), source_size=0)
            return row.finish(SKIP, "a folder marker (an empty object whose key ends in '/'): nothing to transfer")
        try:
            if destination is None:
                self._ends(item)  # raises, saying why the key cannot be a destination
            assert destination is not None
            skip = None if absent else self._size_only_skip(item, destination)
            if skip is not None:
                return skip
            size = item.info.size or 0
            granted = self.budget.take(self.connections_for(size))
            try:
                return self._transfer(item, destination, granted, absent)
            finally:
                self.budget.give_back(granted)
        except TransferError as exc:
            return exc.row
        except FerryError as exc:
            row = ManifestRow(source=source, destination=destination or "", start=now(), source_size=item.info.size)
            return row.finish(ERROR, str(exc))

    def _transfer(self, item: Listed, destination: str, parallelism: int, absent: bool) -> ManifestRow:
        info = item.info
        options = self._options_for(parallelism)
        if isinstance(options, DownloadOptions):
            small = info.size is not None and info.size <= SMALL_OBJECT and info.pinnable
            return download(self.src_hook, info.url, destination, options, listed=info if small else None, exact=True)
        if isinstance(options, UploadOptions):
            return upload(self.dst_hook, info.url, destination, options, known_absent=absent)
        return copy(self.src_hook, self.dst_hook, info.url, destination, options, known_absent=absent)

    def _options_for(self, parallelism: int) -> DownloadOptions | UploadOptions | CopyOptions:
        """One object's options: the run's, with the connections the budget granted. Made once per
        number of connections (the transfers only read them): checking them again for every object
        cost a few stats of the state folder each."""
        options = self._options.get(parallelism)
        if options is None:
            common = {**self._common, "parallelism": parallelism, "adaptive": False}  # the budget decides
            link = self._link
            if link is not None:  # a throttled request lowers the objects in flight
                common["retry"] = replace(self.opts.retry, on_throttle=lambda: link.throttled(time.monotonic()))
            if self.kind == "download":
                options = DownloadOptions(**common, file_mode=self._file_mode)
            elif self.kind == "upload":
                options = UploadOptions(**common)
            else:
                options = CopyOptions(**common, server_side=self.opts.server_side)
            self._options[parallelism] = options
        return options

    def _size_only_skip(self, item: Listed, destination: str) -> ManifestRow | None:
        """With size_only, an existing destination of the same size is a skip."""
        if not self.opts.size_only or self.opts.no_clobber:
            return None
        if self.dst.is_local:
            existing = os.path.getsize(destination) if os.path.isfile(destination) else None
        else:
            try:
                existing = self.dst_hook.head(destination).size
            except FerryError:
                existing = None
        if existing is None or existing != item.info.size:
            return None
        row = ManifestRow(source=redact(item.info.url), destination=destination, start=now(), source_size=existing)
        return row.finish(SKIP, "destination has the same size (size_only); digests not compared")


def _overlap(a: ObjectURL, b: ObjectURL) -> bool:
    """Whether one folder prefix contains the other (same bucket)."""
    if (a.scheme, a.bucket) != (b.scheme, b.bucket):
        return False
    return a.key.startswith(b.key) or b.key.startswith(a.key)


@dataclass
class SyncPlan:
    """What a sync would do, from the two listings (sizes and digests; a local file's digest is
    computed when its size matches) and the manifest, by the same rules as the real run."""

    transfers: list[tuple[str, str, str]] = field(default_factory=list)  # (source, destination, why)
    skips: int = 0
    deletes: list[str] = field(default_factory=list)
    no_deletes: str = ""  # why nothing would be deleted although --delete was asked

    def lines(self) -> Iterator[str]:
        for source, destination, why in self.transfers:
            yield f"would transfer {source} -> {destination} ({why})"
        for url in self.deletes:
            yield f"would delete {url} (not at the source)"

    def summary(self) -> str:
        deletes = f"nothing to delete ({self.no_deletes})" if self.no_deletes else f"{len(self.deletes)} to delete"
        return (
            f"dry run: {len(self.transfers)} to transfer, {self.skips} identical or already done, "
            f"{deletes}; nothing was changed"
        )


def plan_sync(
    source_hook: StorageHook,
    destination_hook: StorageHook,
    source: str,
    destination: str,
    options: BulkOptions,
    *,
    delete: bool,
    manifest_hook: Callable[[str], StorageHook] | None = None,
) -> SyncPlan:
    """A dry run: list both sides and decide as the real run would (folder markers and what the
    manifest lists as done are skipped; a refused key, or a source with no object, means no
    deletes). The destination listing is held in memory, keyed by relative key."""
    bulk = _Bulk(source_hook, destination_hook, source, destination, options, None, dry_run=True)
    names = options.only.names_only()
    existing = {item.relative: item for item in list_prefix(destination_hook, bulk.dst, names)}
    done = (
        done_keys(read_manifest(options.manifest, hook_for=manifest_hook, state_dir=options.state_dir))
        if options.manifest
        else set()
    )
    plan = SyncPlan()
    refused = 0
    for item in bulk._data(bulk._remembered(list_prefix(source_hook, bulk.src, names))):
        source_url, target = bulk._ends(item, quiet=True)
        there = existing.get(item.relative)
        if (item.relative.endswith("/") and not item.info.size) or row_key(source_url, target or "") in done:
            plan.skips += 1
        elif target is None:
            refused += 1
            plan.transfers.append((source_url, "", "refused: the key cannot be a file there"))
        elif there is None:
            plan.transfers.append((source_url, target, "missing at the destination"))
        elif options.no_clobber or _same(item.info, there.info, options.size_only):
            plan.skips += 1
        else:
            plan.transfers.append((source_url, target, "differs"))
    if delete:
        if refused:
            plan.no_deletes = f"{refused} object(s) cannot be transferred, and deletes need every one to succeed"
        elif not bulk.source_keys:
            plan.no_deletes = "the source lists no object"
        else:
            gone = extraneous(iter(existing.values()), bulk.source_keys, bulk.dst, options.manifest)
            plan.deletes = [redact(item.info.url) for item in gone]
    return plan


def _same(a: ObjectInfo, b: ObjectInfo, size_only: bool) -> bool:
    if a.size != b.size:
        return False
    if size_only:
        return True
    if any(getattr(a, n) and getattr(a, n) == getattr(b, n) for n in ("crc32c", "md5")):
        return True
    return _local_digest_matches(a, b) or _local_digest_matches(b, a)


def _local_digest_matches(local: ObjectInfo, stored: ObjectInfo) -> bool:
    """Whether a local file has the whole-object digest the store states (computed from the file,
    as the real run's skip check does); False where there is none to compare."""
    path = parse_url(local.url)
    if not path.is_local or parse_url(stored.url).is_local:
        return False
    for name in ("crc32c", "md5"):
        value = getattr(stored, name)
        if value and "-" not in value:
            return checksums.file_digest(path.key, name) == value
    return False
