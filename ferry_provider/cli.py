"""The ``ferry`` command: the engine outside Airflow, for users, tests and benchmarks.

Exit codes: 0 success, 1 the operation failed, 2 bad arguments. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence


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
    stat.add_argument("--conn", default=None, help="Airflow connection id (default: the store's default)")
    return parser


def _stat(args: argparse.Namespace) -> int:
    from ferry_provider.hooks.factory import hook_for

    info = hook_for(args.url, args.conn).head(args.url)
    print(json.dumps(info.to_dict(), sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Airflow's own logging is chatty at INFO; the CLI speaks only through stdout/stderr.
    logging.getLogger("airflow").setLevel(logging.WARNING)
    from ferry_provider.hooks.errors import FerryError, InvalidArgumentError

    try:
        return {"stat": _stat}[args.command](args)
    except InvalidArgumentError as exc:
        print(f"ferry: error: {exc}", file=sys.stderr)
        return 2
    except FerryError as exc:
        print(f"ferry: {args.command} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
