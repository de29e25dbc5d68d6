"""The ``ferry`` command: the engine outside Airflow, for users, tests and benchmarks.

Exit codes: 0 success, 1 the operation failed, 2 bad arguments. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ferry_provider.cli_bulk import add_bulk_arguments, run_bulk
from ferry_provider.cli_output import print_result

if TYPE_CHECKING:
    from ferry_provider.transfer.manifest import ManifestRow

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
CONN_HELP = (
    "an Airflow connection id; without it Airflow is not loaded and the store's own environment "
    "settings apply (AWS_* and AWS_ENDPOINT_URL, Google ADC and STORAGE_EMULATOR_HOST, no HTTP credentials)"
)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, got {text}")
    return value


def file_mode(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r} (example: 0644)") from None
    if not 0 <= value <= 0o7777:
        raise argparse.ArgumentTypeError(f"not a permission mode: {text!r}")
    return value


def parse_size(text: str) -> int:
    """``'64MiB'``, ``'8M'``, ``'1048576'`` -> bytes (binary units)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 8MiB, 64M, 1048576)")
    unit = (match[2] or "").upper()[:1]
    return int(match[1]) * _UNITS[unit]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"ferry: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ferry", description="Fast, verified object-storage transfers.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    stat = sub.add_parser("stat", help="print an object's size, validators and digests as JSON")
    stat.add_argument("url", help="s3://BUCKET/KEY, gs://BUCKET/KEY, http(s)://..., file://... or a path")
    stat.add_argument("--conn", default=None, help=CONN_HELP)

    cp = sub.add_parser(
        "cp",
        help="copy one object: a verified parallel download (local destination), composite upload (local "
        "source) or copy between object stores (server-side within one store, else a parallel pipeline)",
    )
    mv = sub.add_parser("mv", help="move one object between object stores: copy, verify, then delete the source")
    sync = sub.add_parser(
        "sync", help="make DESTINATION (a prefix or folder) hold every object under SOURCE; --delete the rest"
    )
    for command in (cp, mv, sync):
        _transfer_arguments(command)
    add_bulk_arguments(cp, sync=False, parse_size=parse_size)
    add_bulk_arguments(sync, sync=True, parse_size=parse_size)
    for command in (stat, cp, mv, sync):
        command.add_argument("--connect-timeout", type=seconds, default=None, help="seconds (default 10)")
        command.add_argument(
            "--read-timeout", type=seconds, default=None, help="seconds without a byte before an attempt fails (30)"
        )

    clean = sub.add_parser("cleanup", help="abort stale multipart uploads and delete temporary components")
    clean.add_argument("url", help="s3://BUCKET/PREFIX or gs://BUCKET (components are per bucket)")
    clean.add_argument("--conn", default=None, help=CONN_HELP)
    clean.add_argument("--older-than", default="24h", help="only what is at least this old: 0, 90s, 30m, 24h, 7d")
    clean.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    return parser


def _transfer_arguments(cp: argparse.ArgumentParser) -> None:
    cp.add_argument("source")
    cp.add_argument("destination")
    cp.add_argument("--conn", default=None, help=CONN_HELP + " (for every remote side)")
    cp.add_argument("--src-conn", default=None, help="connection id for the source only")
    cp.add_argument("--dst-conn", default=None, help="connection id for the destination only")
    cp.add_argument(
        "--parallelism",
        "-j",
        type=positive_int,
        default=None,
        help="connections per transfer (default: chosen by the link, up to 32)",
    )
    cp.add_argument("--part-size", type=parse_size, default=None, help="e.g. 16MiB (default: adaptive)")
    cp.add_argument(
        "--check-hashes",
        default="if_fast_else_fail",
        choices=["if_fast_else_fail", "if_fast_else_skip", "always", "never"],
    )
    cp.add_argument("--no-clobber", action="store_true", help="skip when the destination exists")
    cp.add_argument("--no-resume", action="store_true", help="ignore and discard partial data")
    cp.add_argument(
        "--verify-on-resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-hash the parts a resume reuses before trusting them (default: on; always done after a reboot)",
    )
    cp.add_argument("--restart-on-change", action="store_true", help="start over once if the source changes")
    cp.add_argument(
        "--expected-digest", action="append", default=[], metavar="ALGO=HEX", help="e.g. sha256=ab12...; repeatable"
    )
    cp.add_argument("--expected-size", type=int, default=None, help="the source must have exactly this many bytes")
    cp.add_argument("--state-dir", default=None, help="keep tracker files here (an existing directory)")
    cp.add_argument("--content-type", default=None, help="uploads and copies: the object's content type")
    cp.add_argument(
        "--metadata", action="append", default=[], metavar="KEY=VALUE", help="uploads and copies; repeatable"
    )
    cp.add_argument(
        "--mode", type=file_mode, default=None, help="downloads only: the file's mode, e.g. 0640 (default: the umask)"
    )
    cp.add_argument(
        "--server-side",
        default=None,
        choices=["auto", "never"],
        help="copies only: 'never' sends the bytes through this machine even within one store (default: auto)",
    )
    cp.add_argument(
        "--multipart-copy-threshold",
        type=parse_size,
        default=None,
        help="server-side copies only: above this size, parallel part copies (default: 256MiB)",
    )
    cp.add_argument("--json", action="store_true", help="print the manifest row as JSON")
    cp.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    from ferry_provider.hooks.errors import InvalidArgumentError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InvalidArgumentError(f"{what} {item!r}: expected KEY=VALUE")
        if key.lower() in {k.lower() for k in out}:
            raise InvalidArgumentError(f"{what} {key!r} is given twice")
        out[key] = value
    return out


def _digests(items: list[str]) -> dict[str, str]:
    return {k.lower(): v.lower() for k, v in _pairs(items, "--expected-digest").items()}


def _stat(args: argparse.Namespace) -> int:
    from ferry_provider.hooks.factory import store_for

    store = store_for(args.url, args.conn, connect_timeout=args.connect_timeout, read_timeout=args.read_timeout)
    info = store.head(args.url)
    print(json.dumps(info.to_dict(), sort_keys=True))
    return 0


def _cp(args: argparse.Namespace) -> int:
    from ferry_provider.hooks.errors import InvalidArgumentError
    from ferry_provider.hooks.url import parse_url

    if args.conn and (args.src_conn or args.dst_conn):
        raise InvalidArgumentError("--conn serves both sides: give it, or --src-conn/--dst-conn, not both")
    if args.command == "sync" or getattr(args, "recursive", False):
        _refuse(args, "prefixes", expected_digest="--expected-digest", expected_size="--expected-size")
        _refuse(args, "prefixes", content_type="--content-type", metadata="--metadata")
        return run_bulk(args, _common_options(args), lambda url, n, conn: _store(args, url, n, conn))
    source_local, destination_local = parse_url(args.source).is_local, parse_url(args.destination).is_local
    copy_only = {"server_side": "--server-side", "multipart_copy_threshold": "--multipart-copy-threshold"}
    if not source_local and not destination_local:
        _refuse(args, "copies between object stores", mode="--mode")
        return _copy(args)
    if args.command == "mv":
        raise InvalidArgumentError("ferry mv moves between object stores; one side here is local (use ferry cp)")
    if source_local and not destination_local:
        _refuse(args, "uploads", mode="--mode", src_conn="--src-conn (the source is local)", **copy_only)
        return _upload(args)
    _refuse(
        args,
        "downloads",
        content_type="--content-type",
        metadata="--metadata",
        dst_conn="--dst-conn (the destination is local)",
        **copy_only,
    )
    return _download(args)


def _refuse(args: argparse.Namespace, direction: str, **flags: str) -> None:
    """Options with no meaning in this direction are an error, never silently ignored."""
    from ferry_provider.hooks.errors import InvalidArgumentError

    for attribute, flag in flags.items():
        if getattr(args, attribute) not in (None, []):
            raise InvalidArgumentError(f"{flag} does not apply to {direction}")


def _common_options(args: argparse.Namespace) -> dict[str, object]:
    """The options that mean the same in every direction."""
    from ferry_provider.transfer.options import adaptive_options

    return {
        **adaptive_options(args.parallelism),
        "part_size": args.part_size,
        "check_hashes": args.check_hashes,
        "no_clobber": args.no_clobber,
        "resume": not args.no_resume,
        "verify_on_resume": args.verify_on_resume,
        "restart_on_change": args.restart_on_change,
        "expected_digests": _digests(args.expected_digest),
        "expected_size": args.expected_size,
        "state_dir": args.state_dir,
    }


def _store(args: argparse.Namespace, url: str, parallelism: int, conn: str | None) -> object:
    from ferry_provider.hooks.factory import store_for

    return store_for(
        url,
        conn or args.conn,
        max_connections=parallelism,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
    )


def _download(args: argparse.Namespace) -> int:
    from ferry_provider.transfer.download import DownloadOptions, download

    options = DownloadOptions(**_common_options(args), file_mode=args.mode)  # type: ignore[arg-type]
    hook = _store(args, args.source, options.parallelism, args.src_conn)
    return _report(args, lambda: download(hook, args.source, args.destination, options))  # type: ignore[arg-type]


def _upload(args: argparse.Namespace) -> int:
    from ferry_provider.transfer.upload import UploadOptions, upload

    options = UploadOptions(
        **_common_options(args),  # type: ignore[arg-type]
        content_type=args.content_type,
        metadata=_pairs(args.metadata, "--metadata"),
    )
    hook = _store(args, args.destination, options.parallelism, args.dst_conn)
    return _report(args, lambda: upload(hook, args.source, args.destination, options))  # type: ignore[arg-type]


def _copy(args: argparse.Namespace) -> int:
    from ferry_provider.transfer.copy import CopyOptions, copy

    options = CopyOptions(
        **_common_options(args),  # type: ignore[arg-type]
        content_type=args.content_type,
        metadata=_pairs(args.metadata, "--metadata") or None,
        server_side=args.server_side or "auto",
        multipart_copy_threshold=args.multipart_copy_threshold,
        delete_source=args.command == "mv",
    )
    # Two hooks on one store with the same credentials copy server-side (same_store).
    source_hook = _store(args, args.source, options.parallelism, args.src_conn)
    destination_hook = _store(args, args.destination, options.parallelism, args.dst_conn)
    return _report(
        args,
        lambda: copy(source_hook, destination_hook, args.source, args.destination, options),  # type: ignore[arg-type]
    )


def _report(args: argparse.Namespace, transfer: Callable[[], ManifestRow]) -> int:
    """Run one transfer; print its manifest row (JSON with --json), the error row too."""
    from ferry_provider.transfer.interrupt import Interrupted
    from ferry_provider.transfer.manifest import TransferError

    try:
        row = transfer()
    except (TransferError, Interrupted) as exc:
        if args.json and exc.row is not None:
            print_result(json.dumps(exc.row.to_dict(), sort_keys=True))
        raise
    if args.json:
        print_result(json.dumps(row.to_dict(), sort_keys=True))
    else:
        print_result(
            f"{row.result}: {row.source} -> {row.destination} ({row.bytes_transferred} bytes; {row.description})"
        )
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    from ferry_provider.hooks.errors import InvalidArgumentError
    from ferry_provider.hooks.factory import store_for
    from ferry_provider.transfer.cleanup import find_leftovers, parse_age, remove_leftovers

    try:
        age = parse_age(args.older_than)
    except ValueError as exc:
        raise InvalidArgumentError(f"--older-than: {exc}") from None
    hook = store_for(args.url, args.conn)
    if not (hook.capabilities.multipart_upload or hook.capabilities.composite_upload):
        raise InvalidArgumentError(
            f"{args.url}: ferry cleanup removes unfinished uploads from s3:// and gs:// stores; this store has none"
        )
    leftovers = find_leftovers(hook, args.url, age)
    for item in leftovers:
        print(
            json.dumps(
                {
                    "kind": item.kind,
                    "url": item.url,
                    "upload_id": item.upload_id,
                    "age_seconds": round(item.age_seconds, 1),
                    "removed": not args.dry_run,
                }
            )
        )
    if args.dry_run or not leftovers:
        return 0
    return 1 if remove_leftovers(hook, leftovers) else 0


def main(argv: Sequence[str] | None = None) -> int:
    from ferry_provider.transfer.interrupt import Interrupted, raise_on_signals

    raise_on_signals()  # first: a Ctrl-C while Airflow still imports is one line too
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except Interrupted as exc:
        row = exc.row
        detail = row.description if row is not None else str(exc)
        _say(f"ferry: stopped: {detail}")
        # Exit now: threads still blocked on a socket would otherwise hold the exit until their
        # read ends. What a rerun needs is already on disk (tracker, temp file, upload id).
        with contextlib.suppress(OSError):
            sys.stdout.flush()
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        os._exit(exc.exit_code)


def _say(line: str) -> None:
    """One line on stderr, whatever the message holds (a path with a line break, say)."""
    print(line.replace("\r", "\\r").replace("\n", "\\n"), file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from ferry_provider.hooks.errors import FerryError, InvalidArgumentError, scrub

    if args.conn or getattr(args, "src_conn", None) or getattr(args, "dst_conn", None):
        # Airflow (needed for its connections only) configures logging when imported: load it
        # first, so the handler below is not undone.
        import airflow.sdk  # noqa: F401

    # Airflow routes the root logger to stdout; stdout is for results (JSON rows), so Ferry's
    # progress lines get their own stderr handler and Airflow's chatter is held to warnings.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    ferry_log = logging.getLogger("ferry_provider")
    ferry_log.handlers[:] = [handler]
    ferry_log.propagate = False
    quiet = getattr(args, "quiet", True) or args.command == "stat"
    ferry_log.setLevel(logging.WARNING if quiet else logging.INFO)
    logging.getLogger("airflow").setLevel(logging.WARNING)

    try:
        return {"stat": _stat, "cp": _cp, "mv": _cp, "sync": _cp, "cleanup": _cleanup}[args.command](args)
    except InvalidArgumentError as exc:
        _say(f"ferry: error: {exc}")
        return 2
    except FerryError as exc:
        if isinstance(getattr(exc, "cause", None), InvalidArgumentError):
            _say(f"ferry: error: {exc}")
            return 2
        _say(f"ferry: {args.command} failed: {exc}")
        return 1
    except Exception as exc:  # a defect: still one line, scrubbed; the traceback only when asked for
        if os.environ.get("FERRY_DEBUG"):
            raise
        _say(f"ferry: {args.command} failed: {type(exc).__name__}: {scrub(str(exc))}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
