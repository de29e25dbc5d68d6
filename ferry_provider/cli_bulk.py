"""``ferry cp -r`` and ``ferry sync``: every object under a prefix, with a manifest and a live
status line on a terminal (plain periodic lines otherwise)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ferry_provider.cli_output import print_result


def add_bulk_arguments(parser: argparse.ArgumentParser, *, sync: bool, parse_size: Callable[[str], int]) -> None:
    group = parser.add_argument_group("prefixes (cp -r, sync)")
    if not sync:
        group.add_argument("-r", "--recursive", action="store_true", help="every object under SOURCE (a prefix)")
    group.add_argument(
        "--concurrency", type=_positive, default=None, help="objects in flight (default: chosen by the link, 16 to 64)"
    )
    group.add_argument("--max-connections", type=_positive, default=None, help="for all objects together")
    group.add_argument("--include", default=None, metavar="GLOB", help="relative keys matching (* in a segment, **)")
    group.add_argument("--regex", default=None, help="relative keys matching this regular expression")
    group.add_argument("--min-size", type=parse_size, default=None)
    group.add_argument("--max-size", type=parse_size, default=None)
    group.add_argument("--modified-since", type=_when, default=None, metavar="ISO8601", help="e.g. 2026-11-23T00:00Z")
    group.add_argument("--manifest", default=None, metavar="PATH|URL", help="rows as objects finish; a rerun skips")
    group.add_argument("--manifest-format", choices=["csv", "jsonl"], default=None)
    group.add_argument("--size-only", action="store_true", help="same size counts as identical")
    if sync:
        group.add_argument("--delete", action="store_true", help="remove destination objects not at the source")
        group.add_argument("--dry-run", action="store_true", help="say what would be transferred and deleted")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (Z or +HH:MM): {text!r}")
    return value


def run_bulk(args: argparse.Namespace, common: dict[str, Any], open_store: Any) -> int:
    from ferry_provider.transfer.bulk import BulkOptions, bulk_transfer, plan_sync
    from ferry_provider.transfer.listing import ListFilter

    options = BulkOptions(
        **common,
        concurrency=args.concurrency,
        max_connections=args.max_connections,
        only=ListFilter(args.include, args.regex, args.min_size, args.max_size, args.modified_since),
        manifest=args.manifest,
        manifest_format=args.manifest_format,
        size_only=args.size_only,
        file_mode=args.mode,
        server_side=args.server_side or "auto",
    )
    connections = options.connections
    source_hook = open_store(args.source, connections, args.src_conn)
    destination_hook = open_store(args.destination, connections, args.dst_conn)
    sync = args.command == "sync"

    def manifest_hook(url: str) -> Any:
        return open_store(url, 4, args.dst_conn)  # as the operator: the destination's connection

    if sync and args.dry_run:
        plan = plan_sync(
            source_hook,
            destination_hook,
            args.source,
            args.destination,
            options,
            delete=args.delete,
            manifest_hook=manifest_hook,
        )
        for line in plan.lines():
            print(line)
        print(plan.summary(), file=sys.stderr)
        return 0
    status = _Status(sys.stderr, quiet=args.quiet)

    def on_row(row: Any) -> None:
        status.add(row)
        if args.json:
            print_result(json.dumps(row.to_dict(), sort_keys=True))

    status.start()
    try:
        summary = bulk_transfer(
            source_hook,
            destination_hook,
            args.source,
            args.destination,
            options,
            on_row=on_row,
            manifest_hook=manifest_hook,
            delete_extraneous=sync and args.delete,
        )
    finally:
        status.stop()
    line = summary.line() + (f"; manifest {summary.manifest}" if summary.manifest else "")
    print(line, file=sys.stderr if args.json else sys.stdout, flush=True)
    return 1 if summary.errors else 0


class _Status:
    """Objects, bytes, rate and failures so far: one line rewritten in place on a terminal,
    a line every 10 s otherwise."""

    def __init__(self, stream: Any, *, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self.counts: dict[str, int] = {}
        self.bytes = 0
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="ferry-status", daemon=True)

    def add(self, row: Any) -> None:
        with self._lock:
            self.counts[row.result] = self.counts.get(row.result, 0) + 1
            self.bytes += row.bytes_transferred
        if row.result == "error" and not self.quiet:
            self._print(f"error: {row.source}: {row.description}", keep=True)

    def line(self) -> str:
        with self._lock:
            done = sum(self.counts.values())
            elapsed = max(time.monotonic() - self.started, 1e-9)
            return (
                f"{done} objects ({self.counts.get('OK', 0)} OK, {self.counts.get('skip', 0)} skipped, "
                f"{self.counts.get('error', 0)} failed), {self.bytes / 2**20:.1f} MiB, "
                f"{self.bytes / elapsed / 2**20:.1f} MiB/s, {done / elapsed:.0f} objects/s"
            )

    def _print(self, text: str, *, keep: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if keep else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _loop(self) -> None:
        interval = 0.5 if self.tty else 10.0
        while not self._stop.wait(interval):
            self._print(self.line())

    def start(self) -> None:
        if not self.quiet:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.tty and not self.quiet:
            self.stream.write("\r\033[K")
            self.stream.flush()
