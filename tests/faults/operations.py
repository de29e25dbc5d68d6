"""The operations of the matrix's rows. Each says how to set up its ``ferry cp``, where its data
flows (so a fault knows which bodies to damage), where its destination and its resumable state
are, and which faults have no meaning for it.

A new row (server-side copy, cross-store copy, bulk) is one more subclass here and one line in
``matrix.ROWS``: the fault columns only use this interface. Its ``not_applicable`` names the
faults that have no meaning for it (a server-side copy moves no bytes through the proxy); an
operation on two stores reaches the second one with ``cell.store(name)`` and lists both in
``stores`` (their leftovers are checked and cleaned alike); ``wire_target`` says where a fault on
the wire strikes when that is not the data requests' bodies. An operation that moves several
objects in one run (a bulk) keeps the others in ``Transfer.others``, the faults striking one of
them (``key``, ``data``); ``sort_rows``, ``settled`` and ``record_problems`` say how its rows,
holds and final state are judged beyond that object.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.faults.backends import Backend, GCSBackend, S3Backend
from tests.faults.cell import CUT_AT, KILL_AFTER_PARTS, PART, SIZE, Cell, Transfer
from tests.faults.local_state import MARKER, ferry_files, find, tracker_parts
from tests.stores import crc32c_hex

if TYPE_CHECKING:
    from tests.faults.ferry_run import FerryRun

PART_ARG = f"{PART >> 20}MiB"


@dataclass(frozen=True)
class WireTarget:
    """Where a fault on the wire strikes: the ``method`` requests whose path contains ``match``,
    in their answer bodies (``in_answers``) or their request bodies, at body offset ``at``."""

    method: str
    match: str
    in_answers: bool
    at: int = CUT_AT


class Operation:
    name = ""
    data_in_answers = True  # data reaches the client in answer bodies (else in request bodies)
    writes_remote = False  # it writes to the store (else it only reads from it)
    exclusive_destination = False  # a second writer must fail at once or wait (a local file, a copy's lock)
    restarts_on_change = False  # --restart-on-change applies
    parallelism = 2
    error_line = r"^ferry:"  # the last stderr line of a run that failed (a regex)
    # What the row of the object in flight must say after SIGINT (a regex); None: it may have none.
    interrupted_row: str | None = None

    def not_applicable(self, fault: str, backend: type[Backend]) -> str | None:
        """Why ``fault`` has no meaning for this operation on ``backend``; None if it has."""
        return None

    def note(self, fault: str, backend: type[Backend]) -> str | None:
        """How ``fault``'s cell stands in for the real fault on this operation, when it has to."""
        return None

    def title(self, backend: type[Backend]) -> str:
        """The row's label."""
        return f"{self.name} {backend.title}"

    def stores(self, cell: Cell) -> list[Backend]:
        """Every store this operation reads or writes (the row's first): where leftovers are looked for."""
        return [cell.backend]

    def env(self, cell: Cell) -> dict[str, str]:
        """ferry cp's environment: the store reached through the cell's proxy."""
        return cell.backend.env(cell.proxy_url)

    def rejected_credentials_env(self, cell: Cell) -> dict[str, str] | None:
        """ferry cp's environment with credentials a store rejects; None when no store checks any."""
        return cell.backend.wrong_credentials_env(cell.proxy_url)

    def checks_credentials(self, backend: type[Backend]) -> bool:
        """Whether a store of this row rejects wrong credentials itself (else the proxy stands in)."""
        return backend.checks_credentials

    def missing_bucket_store(self, cell: Cell) -> Backend:
        """The store whose bucket ``with_missing_bucket`` names."""
        return cell.backend

    def has_buckets(self, backend: type[Backend]) -> bool:
        """Whether the store ``with_missing_bucket`` acts on has buckets at all."""
        return backend.has_buckets

    def wire_target(self, cell: Cell, t: Transfer, fault: str) -> WireTarget:
        """Where the wire fault ``fault`` strikes: by default, the bodies that carry the data."""
        return WireTarget(*self.data_match(cell, t), in_answers=self.data_in_answers)

    def hold_after_parts(self, t: Transfer) -> int:
        """Data requests let through before a transfer is held mid-way (for kills, changes, a
        second writer): they are finished parts when the hold lands."""
        return KILL_AFTER_PARTS

    def prepare(self, cell: Cell, local_dir: Path | None) -> Transfer:
        raise NotImplementedError

    def args(self, cell: Cell, t: Transfer, expect: bytes) -> list[str]:
        """ferry cp's arguments for ``t``, ending with ``expect``."""
        raise NotImplementedError

    def verified(self, backend: Backend) -> str:
        """What an OK row of this operation must say it verified (a regex)."""
        raise NotImplementedError

    def destination_bytes(self, cell: Cell, t: Transfer) -> bytes | None:
        raise NotImplementedError

    def with_missing_bucket(self, cell: Cell, t: Transfer) -> tuple[Transfer, str]:
        """``t`` with its remote side in a bucket that does not exist, and that bucket's name."""
        raise NotImplementedError

    def data_match(self, cell: Cell, t: Transfer) -> tuple[str, str]:
        """(method, path substring) of the requests that carry the object's bytes."""
        raise NotImplementedError

    def done_parts(self, cell: Cell, t: Transfer) -> dict[int, int]:
        """The parts its tracker records as finished, index -> size."""
        raise NotImplementedError

    def missing_resumable_state(self, cell: Cell, t: Transfer) -> list[str]:
        """What an interrupted run should have kept for the rerun but did not."""
        raise NotImplementedError

    def local_leftovers(self, cell: Cell, t: Transfer) -> list[str]:
        return ferry_files(t.local_dir)

    def disk_leftovers(self, cell: Cell, t: Transfer, disk: Path) -> list[str]:
        """What is on the (full) destination disk after a final failure: nothing should be."""
        return sorted(os.listdir(disk))

    def settled(self, cell: Cell, t: Transfer) -> bool:
        """Whether all that should be finished before a held transfer is struck is (a bulk's
        other objects: their rows written); a hold waits for it."""
        return True

    def sort_rows(
        self, t: Transfer, rows: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        """A run's rows: the object in focus's, each other object's (a bulk's), and rows of no
        object of ``t``."""
        return rows, {}, []

    def unlisted(self, cell: Cell, run: FerryRun) -> bool:
        """Whether ``run`` failed before it knew of any object (a bulk's listing, or its manifest,
        could not be read): no row is due."""
        return False

    def record_problems(self, cell: Cell, t: Transfer) -> list[str]:
        """What else is wrong once the transfer has finally ended, beyond the object in focus (a
        bulk's other objects against their manifest rows; the manifest across runs)."""
        return []

    def rerun_traffic(self, cell: Cell, t: Transfer, done: dict[int, int]) -> tuple[int, int, str]:
        """(moved, allowed, unit): data the rerun moved through the proxy, and at most what was
        not done when the first run stopped."""
        raise NotImplementedError

    def change_source(self, cell: Cell, t: Transfer, new: bytes) -> None:
        """Overwrite the source with ``new`` behind the running transfer's back."""
        raise NotImplementedError

    def changed_source(self, t: Transfer) -> str:
        """What the row of a transfer whose source changed must say (a regex)."""
        return r"chang"


class Download(Operation):
    """ferry cp REMOTE LOCAL: parallel ranged reads into a temp file, verified, renamed."""

    name = "download"
    exclusive_destination = True
    restarts_on_change = True

    def prepare(self, cell: Cell, local_dir: Path | None) -> Transfer:
        key = f"{cell.prefix}object.bin"
        data = os.urandom(SIZE)
        cell.backend.seed(key, data)
        directory = local_dir or cell.workdir / "dest"
        directory.mkdir(parents=True, exist_ok=True)
        source = cell.backend.url(key, cell.proxy_url)
        return Transfer(source, str(directory / "object.bin"), key, data, directory)

    def args(self, cell: Cell, t: Transfer, expect: bytes) -> list[str]:
        options = ["--json", "--quiet", "-j", str(self.parallelism), "--part-size", PART_ARG]
        return [t.source, t.destination, *options, *cell.backend.digest_args(expect)]

    def verified(self, backend: Backend) -> str:
        return rf"verified\b.*\b{backend.verified}"

    def destination_bytes(self, cell: Cell, t: Transfer) -> bytes | None:
        try:
            return Path(t.destination).read_bytes()
        except FileNotFoundError:
            return None

    def with_missing_bucket(self, cell: Cell, t: Transfer) -> tuple[Transfer, str]:
        url = cell.backend.missing_bucket_url(t.key)
        return Transfer(url, t.destination, t.key, t.data, t.local_dir), url.split("/")[2]

    def data_match(self, cell: Cell, t: Transfer) -> tuple[str, str]:
        return "GET", cell.backend.download_match(t.key)

    def done_parts(self, cell: Cell, t: Transfer) -> dict[int, int]:
        trackers = find(t.local_dir, ".ferry-tracker")
        return tracker_parts(trackers[0]) if trackers else {}

    def missing_resumable_state(self, cell: Cell, t: Transfer) -> list[str]:
        wanted = {"temp file *.ferry-tmp": ".ferry-tmp", "tracker *.ferry-tracker": ".ferry-tracker"}
        return [what for what, suffix in wanted.items() if not find(t.local_dir, suffix)]

    def rerun_traffic(self, cell: Cell, t: Transfer, done: dict[int, int]) -> tuple[int, int, str]:
        method, match = self.data_match(cell, t)
        return cell.proxy.body_bytes(method, match), len(t.data) - sum(done.values()), "body bytes"

    def change_source(self, cell: Cell, t: Transfer, new: bytes) -> None:
        cell.backend.seed(t.key, new)
        t.data = new


class Upload(Operation):
    """ferry cp LOCAL REMOTE: S3 multipart parts or GCS components, joined, verified."""

    name = "upload"
    data_in_answers = False
    writes_remote = True

    def not_applicable(self, fault: str, backend: type[Backend]) -> str | None:
        if fault == "disk-full":
            return "an upload writes no data to the local disk (only a small tracker)"
        return None

    def prepare(self, cell: Cell, local_dir: Path | None) -> Transfer:
        key = f"{cell.prefix}object.bin"
        data = os.urandom(SIZE)
        directory = local_dir or cell.workdir / "src"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "object.bin").write_bytes(data)
        return Transfer(str(directory / "object.bin"), cell.backend.url(key, cell.proxy_url), key, data, directory)

    def args(self, cell: Cell, t: Transfer, expect: bytes) -> list[str]:
        options = ["--json", "--quiet", "-j", str(self.parallelism), "--part-size", PART_ARG]
        return [t.source, t.destination, *options]

    def verified(self, backend: Backend) -> str:
        return r"crc32c verified"

    def destination_bytes(self, cell: Cell, t: Transfer) -> bytes | None:
        return cell.backend.read(t.key)

    def with_missing_bucket(self, cell: Cell, t: Transfer) -> tuple[Transfer, str]:
        url = cell.backend.missing_bucket_url(t.key)
        return Transfer(t.source, url, t.key, t.data, t.local_dir), url.split("/")[2]

    def data_match(self, cell: Cell, t: Transfer) -> tuple[str, str]:
        return cell.backend.upload_method, cell.backend.upload_match

    def done_parts(self, cell: Cell, t: Transfer) -> dict[int, int]:
        trackers = find(t.local_dir, ".ferry-upload-tracker")
        return tracker_parts(trackers[0]) if trackers else {}

    def missing_resumable_state(self, cell: Cell, t: Transfer) -> list[str]:
        missing = [] if find(t.local_dir, ".ferry-upload-tracker") else ["tracker *.ferry-upload-tracker"]
        if not cell.leftovers():
            missing.append("the unfinished upload on the store (multipart upload or components)")
        return missing

    def rerun_traffic(self, cell: Cell, t: Transfer, done: dict[int, int]) -> tuple[int, int, str]:
        method, match = self.data_match(cell, t)
        return cell.proxy.answered(method, match), t.parts - len(done), "parts uploaded"

    def change_source(self, cell: Cell, t: Transfer, new: bytes) -> None:
        # In place, same size: only the modification time tells (a new inode would be easier).
        with open(t.source, "r+b") as f:
            f.write(new)
        t.data = new


class Copy(Operation):
    """ferry cp REMOTE REMOTE: the source is seeded on the row's store (behind the proxy), the
    copy's tracker and writer lock go to ``--state-dir``, a folder of the cell's (never the user's
    ~/.local/state/ferry), where the local-state helpers look for leftovers."""

    writes_remote = True
    exclusive_destination = True  # the writer lock beside the tracker: a second copy fails at once
    restarts_on_change = True  # ferry cp offers --restart-on-change for copies as for downloads

    def copy_args(self, backend: Backend) -> list[str]:
        return []

    def destination_store(self, cell: Cell) -> Backend:
        return cell.backend

    def stores(self, cell: Cell) -> list[Backend]:
        destination = self.destination_store(cell)
        return [cell.backend] if destination is cell.backend else [cell.backend, destination]

    def not_applicable(self, fault: str, backend: type[Backend]) -> str | None:
        if fault == "disk-full":
            return "a copy writes no data to the local disk (only a small tracker in --state-dir)"
        return None

    def prepare(self, cell: Cell, local_dir: Path | None) -> Transfer:
        key, destination_key = f"{cell.prefix}object.bin", f"{cell.prefix}copy.bin"
        data = os.urandom(SIZE)
        cell.backend.seed(key, data)
        directory = local_dir or cell.workdir / "state"
        directory.mkdir(parents=True, exist_ok=True)
        destination = self.destination_store(cell)
        return Transfer(
            cell.backend.url(key, cell.proxy_url),
            destination.url(destination_key, destination.upstream),
            key,
            data,
            directory,
            destination_key=destination_key,
            part_size=self.part_size(cell.backend, data),
        )

    def part_size(self, backend: Backend, data: bytes) -> int:
        return PART

    def note(self, fault: str, backend: type[Backend]) -> str | None:
        if fault == "missing-bucket":
            return "a copy's missing bucket is the destination's (the source exists)"
        return None

    def args(self, cell: Cell, t: Transfer, expect: bytes) -> list[str]:
        options = ["--json", "--quiet", "-j", str(self.parallelism), "--state-dir", str(t.local_dir)]
        return [t.source, t.destination, *options, *self.copy_args(cell.backend), *self.digest_args(cell, expect)]

    def digest_args(self, cell: Cell, expect: bytes) -> list[str]:
        return []

    def destination_bytes(self, cell: Cell, t: Transfer) -> bytes | None:
        return self.destination_store(cell).read(t.destination_key)

    def missing_bucket_store(self, cell: Cell) -> Backend:
        return self.destination_store(cell)  # the side a copy writes: it must not create the bucket

    def with_missing_bucket(self, cell: Cell, t: Transfer) -> tuple[Transfer, str]:
        url = self.destination_store(cell).missing_bucket_url(t.destination_key)
        missing = Transfer(t.source, url, t.key, t.data, t.local_dir, t.destination_key, t.part_size)
        return missing, url.split("/")[2]

    def done_parts(self, cell: Cell, t: Transfer) -> dict[int, int]:
        trackers = find(t.local_dir, ".ferry-copy-tracker")
        return tracker_parts(trackers[0]) if trackers else {}

    def change_source(self, cell: Cell, t: Transfer, new: bytes) -> None:
        cell.backend.seed(t.key, new)
        t.data = new

    def changed_source(self, t: Transfer) -> str:
        # Both ends are objects: the row must name the one that changed, the source (not copy.bin).
        return rf"{re.escape(os.path.basename(t.key))}\b.*\bchang"


class ServerSideCopy(Copy):
    """ferry cp within one store: S3 parallel UploadPartCopy (a 5 MiB --multipart-copy-threshold
    and --part-size send the object through five part copies), GCS rewrite. No byte of the
    object passes through the proxy: the faults strike the requests that make the store copy."""

    name = "server-copy"
    data_in_answers = False

    def title(self, backend: type[Backend]) -> str:
        return f"server-side copy {backend.title}"

    def not_applicable(self, fault: str, backend: type[Backend]) -> str | None:
        if fault in ("truncated", "flip"):
            return (
                "a server-side copy moves no object bytes through the worker: the store copies them "
                "itself (its CRC32C of the copy is compared with the source's)"
            )
        return super().not_applicable(fault, backend)

    def note(self, fault: str, backend: type[Backend]) -> str | None:
        if fault == "reset":
            what = "CompleteMultipartUpload" if backend.copies_in_parts else "the rewrite request"
            return f"no object bytes cross the wire: the reset cuts the copy's one request with a body ({what})"
        if fault in ("sigkill", "sigint") and not backend.copies_in_parts:
            return (
                f"{backend.title} rewrites in one call and returns no rewrite token: the signal lands while "
                "that call is held, and the rerun makes it again"
            )
        if fault == "overwritten" and not backend.copies_in_parts:
            return (
                f"{backend.title} ignores ifSourceGenerationMatch on a rewrite: only the copy's CRC32C against "
                "the pinned source's can tell"
            )
        return super().note(fault, backend)

    def copy_args(self, backend: Backend) -> list[str]:
        return ["--part-size", PART_ARG, "--multipart-copy-threshold", PART_ARG]

    def part_size(self, backend: Backend, data: bytes) -> int:
        return PART if backend.copies_in_parts else max(len(data), 1)

    def verified(self, backend: Backend) -> str:
        return r"^server-side\b.*\bverified size and crc32c\b"

    def data_match(self, cell: Cell, t: Transfer) -> tuple[str, str]:
        return cell.backend.copy_request

    def wire_target(self, cell: Cell, t: Transfer, fault: str) -> WireTarget:
        if fault == "reset":  # the copy requests carry no body: cut the one that has one
            method, match, length = cell.backend.copy_request_with_body
            return WireTarget(method, match, in_answers=False, at=length // 2)
        return super().wire_target(cell, t, fault)

    def hold_after_parts(self, t: Transfer) -> int:
        return min(KILL_AFTER_PARTS, t.parts - 1)  # one request: held before anything is done

    def missing_resumable_state(self, cell: Cell, t: Transfer) -> list[str]:
        if not cell.backend.copies_in_parts:
            return []  # an unanswered rewrite call leaves no token to continue from
        missing = [] if find(t.local_dir, ".ferry-copy-tracker") else ["tracker *.ferry-copy-tracker in --state-dir"]
        if not cell.leftovers():
            missing.append("the unfinished multipart upload on the store")
        return missing

    def rerun_traffic(self, cell: Cell, t: Transfer, done: dict[int, int]) -> tuple[int, int, str]:
        method, match = self.data_match(cell, t)
        unit = "part copies" if cell.backend.copies_in_parts else "rewrite calls"
        return cell.proxy.answered(method, match), t.parts - len(done), unit


class CrossStoreCopy(Copy):
    """ferry cp between two stores (S3 -> GCS, GCS -> S3, HTTP -> S3): ranged GETs of the source
    feed part uploads to the destination, the source's CRC32C checked before the object is
    completed (an HTTP source keeps none: it is given as --expected-digest crc32c=..., a digest
    combined over parts, so a rerun may reuse them; a sha256 would need every byte read again).

    The proxy stands in front of the source, where the object's bytes enter the worker: body
    faults damage the source's answers (a flipped byte must end in an error and nothing at the
    destination), kills hold its reads mid-body, the rerun's re-fetched bytes are counted there.
    The destination is reached directly and checked for leftovers like the source. Both stores
    are set from the environment alone (AWS_* and STORAGE_EMULATOR_HOST do not overlap), so no
    run loads Airflow for its connections; one store of each kind also means both sinks (S3
    multipart, GCS components) and both ranged sources are exercised.
    """

    name = "pipeline"
    # The destination's store, by the source's.
    DESTINATIONS: dict[str, type[Backend]] = {"s3": GCSBackend, "gcs": S3Backend, "http": S3Backend}
    SHORT = {"s3": "S3", "gcs": "GCS", "http": "HTTP"}

    def title(self, backend: type[Backend]) -> str:
        return f"cross-store copy {self.SHORT[backend.name]} -> {self.SHORT[self.DESTINATIONS[backend.name].name]}"

    def destination_store(self, cell: Cell) -> Backend:
        return cell.store(self.DESTINATIONS[cell.backend.name].name)

    def has_buckets(self, backend: type[Backend]) -> bool:
        return self.DESTINATIONS[backend.name].has_buckets

    def digest_args(self, cell: Cell, expect: bytes) -> list[str]:
        if cell.backend.digest_args(expect):  # a source that keeps no digest: the caller gives one
            return ["--expected-digest", f"crc32c={crc32c_hex(expect)}"]
        return []

    def copy_args(self, backend: Backend) -> list[str]:
        return ["--part-size", PART_ARG]

    def env(self, cell: Cell) -> dict[str, str]:
        destination = self.destination_store(cell)
        return {**destination.env(destination.upstream), **cell.backend.env(cell.proxy_url)}

    def rejected_credentials_env(self, cell: Cell) -> dict[str, str] | None:
        """Wrong credentials for whichever side checks them (the S3 one): the source or the destination."""
        destination = self.destination_store(cell)
        wrong_source = cell.backend.wrong_credentials_env(cell.proxy_url)
        if wrong_source is not None:
            return {**destination.env(destination.upstream), **wrong_source}
        wrong_destination = destination.wrong_credentials_env(destination.upstream)
        if wrong_destination is not None:
            return {**wrong_destination, **cell.backend.env(cell.proxy_url)}
        return None

    def checks_credentials(self, backend: type[Backend]) -> bool:
        return True  # the S3 side does, as source or destination

    def note(self, fault: str, backend: type[Backend]) -> str | None:
        if fault == "credentials" and not backend.checks_credentials:
            return f"{backend.title} checks none: the S3 destination is given a wrong secret key"
        return super().note(fault, backend)

    def verified(self, backend: Backend) -> str:
        return r"^pipeline\b.*source's crc32c verified on the bytes read.*\bstored crc32c verified at the destination"

    def data_match(self, cell: Cell, t: Transfer) -> tuple[str, str]:
        return "GET", cell.backend.download_match(t.key)

    def missing_resumable_state(self, cell: Cell, t: Transfer) -> list[str]:
        missing = [] if find(t.local_dir, ".ferry-copy-tracker") else ["tracker *.ferry-copy-tracker in --state-dir"]
        if not cell.leftovers():
            missing.append("the unfinished upload on the destination (multipart upload or components)")
        return missing

    def rerun_traffic(self, cell: Cell, t: Transfer, done: dict[int, int]) -> tuple[int, int, str]:
        method, match = self.data_match(cell, t)
        return cell.proxy.body_bytes(method, match), len(t.data) - sum(done.values()), "source body bytes"


class Bulk(Operation):
    """ferry cp -r PREFIX PREFIX: a few objects under the cell's prefix, each moved by the
    single-object engine, one manifest row each, written to ``--manifest`` as it finishes.

    One object is large (``large.bin``, SIZE: fetched or sent in several parts) and the faults
    strike its requests alone; the others are small (one request each, under CUT_AT, in
    subfolders too) and must come through untouched, whatever happens to it. A hold waits for
    their rows before it strikes, so a kill lands mid-``large.bin`` with the others recorded OK,
    and the rerun, given the same manifest, must skip them and resume ``large.bin`` only.

    Every run of a cell appends to one manifest (``bulk.manifest.jsonl`` in the cell's folder);
    trackers go to ``--state-dir`` there. Once the cell is over, each object must have a row, its
    last one saying what its destination holds (OK/skip: the exact bytes; error: nothing), every
    row a run printed must be in the manifest, and no run may move an object again after an
    earlier run recorded it OK (two runs at once may both move it).
    """

    FOCUS = "large.bin"
    OTHERS = {"small-1.bin": 100 << 10, "sub/small-2.bin": 700 << 10, "sub/deeper/small-3.bin": 3 << 10}
    concurrency = 4
    direction = ""
    error_line = r"^ferry:|\b[1-9]\d* failed\b"  # ferry's error, or the summary counting failed objects
    interrupted_row = r"\binterrupted by SIG\w+ before this object finished; a rerun resumes it"

    def title(self, backend: type[Backend]) -> str:
        return f"bulk {self.direction} {backend.title}"

    manifest_on_store = False  # --manifest is an object URL: written through a spool in --state-dir

    def manifest(self, cell: Cell) -> Path:
        return cell.workdir / "bulk.manifest.jsonl"

    def manifest_key(self, cell: Cell) -> str:
        return f"{cell.prefix}_manifest/rows.jsonl"

    def manifest_arg(self, cell: Cell) -> str:
        if self.manifest_on_store:
            return cell.backend.url(self.manifest_key(cell), cell.proxy_url)
        return str(self.manifest(cell))

    def manifest_text(self, cell: Cell) -> str:
        """The manifest as a run would read it: a spool an unfinished run left wins over the
        object on the store, as Ferry's own reader has it."""
        if not self.manifest_on_store:
            try:
                return self.manifest(cell).read_text()
            except FileNotFoundError:
                return ""
        spools = find(self.state_dir(cell), ".ferry-spool")
        if spools:
            return spools[0].read_text()
        stored = cell.backend.read(self.manifest_key(cell))
        return stored.decode() if stored else ""

    def state_dir(self, cell: Cell) -> Path:
        return cell.workdir / "state"

    def names(self) -> list[str]:
        return [self.FOCUS, *self.OTHERS]

    def expected(self, t: Transfer) -> dict[str, bytes]:
        return {self.FOCUS: t.data, **t.others}

    def make_objects(self, cell: Cell) -> tuple[bytes, dict[str, bytes]]:
        self.state_dir(cell).mkdir(parents=True, exist_ok=True)
        return os.urandom(SIZE), {name: os.urandom(size) for name, size in self.OTHERS.items()}

    def args(self, cell: Cell, t: Transfer, expect: bytes) -> list[str]:
        options = ["-r", "--json", "--quiet", "-j", str(self.parallelism), "--part-size", PART_ARG]
        options += ["--concurrency", str(self.concurrency), "--manifest", self.manifest_arg(cell)]
        return [t.source, t.destination, *options, "--state-dir", str(self.state_dir(cell))]

    def note(self, fault: str, backend: type[Backend]) -> str | None:
        if fault in ("sigkill", "sigint"):
            return (
                "a bulk: the small objects are recorded OK, then the signal lands mid-large.bin; the rerun, "
                "with the same --manifest, must skip them and resume large.bin alone"
            )
        if fault == "concurrent":
            return "a bulk: the second run, with the same --manifest, fails at once: one run per manifest"
        return None

    def object_bytes(self, cell: Cell, t: Transfer, name: str) -> bytes | None:
        """What the destination holds for the object ``name``; None when nothing."""
        raise NotImplementedError

    def destination_bytes(self, cell: Cell, t: Transfer) -> bytes | None:
        return self.object_bytes(cell, t, self.FOCUS)

    def name_of(self, row: dict[str, Any]) -> str | None:
        source = str(row.get("source") or "")
        return next((name for name in self.names() if source.endswith("/" + name)), None)

    def sort_rows(
        self, t: Transfer, rows: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        focus: list[dict[str, Any]] = []
        others: dict[str, list[dict[str, Any]]] = {}
        unknown: list[dict[str, Any]] = []
        for row in rows:
            name = self.name_of(row)
            if name == self.FOCUS:
                focus.append(row)
            elif name is None:
                unknown.append(row)
            else:
                others.setdefault(name, []).append(row)
        return focus, others, unknown

    def unlisted(self, cell: Cell, run: FerryRun) -> bool:
        last = run.stderr_lines[-1] if run.stderr_lines else ""
        # Refused before listing: the listing failed, or the manifest is another run's (one run
        # per manifest, local or stored; the error names it).
        before = "listing failed" in last or self.manifest_arg(cell) in last
        return run.returncode not in (0, None) and not run.rows and last.startswith("ferry:") and before

    def manifest_rows(self, cell: Cell) -> tuple[list[dict[str, Any]], list[str]]:
        """The manifest's rows in order, and its lines that are not rows."""
        rows: list[dict[str, Any]] = []
        bad: list[str] = []
        for line in self.manifest_text(cell).splitlines():
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                value = None
            if isinstance(value, dict):
                rows.append(value)
            else:
                bad.append(line[:120])
        return rows, bad

    def recorded_ok(self, rows: list[dict[str, Any]]) -> set[str]:
        """The objects with an OK or skip row among ``rows``."""
        return {name for row in rows if row.get("result") in ("OK", "skip") and (name := self.name_of(row))}

    def settled(self, cell: Cell, t: Transfer) -> bool:
        return set(t.others) <= self.recorded_ok(self.manifest_rows(cell)[0])

    def record_problems(self, cell: Cell, t: Transfer) -> list[str]:
        problems: list[str] = []
        rows, bad = self.manifest_rows(cell)
        if bad:
            problems.append(f"manifest lines that are no row: {bad}")
        # Which run wrote each row: the rows a run printed are the ones it wrote (both as written).
        writers: list[int | None] = []
        printed = [list(run.rows) for run in cell.runs]
        for row in rows:
            number = next((n for n, own in enumerate(printed) if row in own), None)
            if number is not None:
                printed[number].remove(row)
            writers.append(number)
        # A SIGKILL can land between a row's write to the manifest and its print: such rows are
        # the killed run's.
        killed = [n for n, run in enumerate(cell.runs) if run.returncode is not None and run.returncode < 0]
        if len(killed) == 1:
            writers = [killed[0] if writer is None else writer for writer in writers]
        if None in writers:
            problems.append(f"{writers.count(None)} manifest row(s) that no run printed")
        for number, left in enumerate(printed, 1):
            if left:
                problems.append(f"run {number} printed {len(left)} row(s) the manifest lacks")
        unknown = [row.get("source") for row in rows if self.name_of(row) is None]
        if unknown:
            problems.append(f"manifest rows of no object under the prefix: {unknown}")
        listing_failed = any(self.unlisted(cell, run) for run in cell.runs)
        for name, data in self.expected(t).items():
            own = [(row, writer) for row, writer in zip(rows, writers, strict=True) if self.name_of(row) == name]
            actual = self.object_bytes(cell, t, name)
            if not own:
                if not listing_failed:
                    problems.append(f"{name} has no manifest row")
                if actual is not None:
                    problems.append(f"{name} has no manifest row, yet {len(actual)} bytes are at its destination")
                continue
            last = own[-1][0].get("result")
            if last in ("OK", "skip") and actual != data:
                what = "nothing" if actual is None else f"{len(actual)} other bytes"
                problems.append(f"{name}: its last row is {last}, yet its destination holds {what}")
            elif last == "error" and actual is not None and name != self.FOCUS:
                problems.append(f"{name}: its last row is error, yet {len(actual)} bytes are at its destination")
            elif last not in ("OK", "skip", "error"):
                problems.append(f"{name}: last row result {last!r}")
            for i, (row, writer) in enumerate(own):
                if row.get("result") not in ("OK", "skip") or writer is None:
                    continue
                ended = cell.runs[writer].ended
                for later, again in own[i + 1 :]:
                    if again is not None and ended is not None and cell.runs[again].started > ended:
                        problems.append(
                            f"{name}: run {again + 1} moved it again ({later.get('result')}) though run "
                            f"{writer + 1} had recorded it {row.get('result')}: a rerun must skip it"
                        )
        return problems

    def local_leftovers(self, cell: Cell, t: Transfer) -> list[str]:
        found = [str(p.relative_to(t.local_dir)) for p in sorted(t.local_dir.rglob("*")) if MARKER in p.name]
        return found + [f"state/{name}" for name in ferry_files(self.state_dir(cell))]

    def disk_leftovers(self, cell: Cell, t: Transfer, disk: Path) -> list[str]:
        # The objects recorded OK may stay (their bytes are checked against their rows).
        kept = self.recorded_ok(self.manifest_rows(cell)[0])
        files = sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if not p.is_dir())
        return [name for name in files if name not in kept]

    def tracker(self, cell: Cell, suffix: str) -> Path | None:
        trackers = [p for p in find(self.state_dir(cell), suffix) if p.name.startswith(self.FOCUS + ".")]
        return trackers[0] if trackers else None

    def finished_before_rerun(self, cell: Cell, t: Transfer) -> set[str]:
        """The other objects recorded OK by the runs before the last one."""
        return self.recorded_ok([row for run in cell.runs[:-1] for row in run.rows]) & set(t.others)

    def unfinished_others(self, cell: Cell, t: Transfer) -> int:
        done = self.finished_before_rerun(cell, t)
        return sum(len(data) for name, data in t.others.items() if name not in done)


class BulkDownload(Bulk):
    """ferry cp -r PREFIX FOLDER: large.bin in ranged parts (a temp file beside it, its tracker
    in --state-dir), the small objects in one request each, into subfolders as their keys say."""

    name = "bulk-download"
    direction = "download"
    exclusive_destination = True
    restarts_on_change = True

    def prepare(self, cell: Cell, local_dir: Path | None) -> Transfer:
        data, others = self.make_objects(cell)
        cell.backend.seed(cell.prefix + self.FOCUS, data)
        for name, body in others.items():
            cell.backend.seed(cell.prefix + name, body)
        directory = local_dir or cell.workdir / "dest"
        directory.mkdir(parents=True, exist_ok=True)
        source = cell.backend.url(cell.prefix, cell.proxy_url)
        return Transfer(source, f"{directory}/", cell.prefix + self.FOCUS, data, directory, others=others)

    def verified(self, backend: Backend) -> str:
        return rf"verified\b.*\b{backend.verified}"

    def object_bytes(self, cell: Cell, t: Transfer, name: str) -> bytes | None:
        try:
            return (t.local_dir / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def with_missing_bucket(self, cell: Cell, t: Transfer) -> tuple[Transfer, str]:
        url = cell.backend.missing_bucket_url(cell.prefix)
        missing = Transfer(url, t.destination, t.key, t.data, t.local_dir, others=t.others)
        return missing, url.split("/")[2]

    def data_match(self, cell: Cell, t: Transfer) -> tuple[str, str]:
        return "GET", cell.backend.object_read_match(t.key)

    def done_parts(self, cell: Cell, t: Transfer) -> dict[int, int]:
        tracker = self.tracker(cell, ".ferry-tracker")
        return tracker_parts(tracker) if tracker else {}

    def missing_resumable_state(self, cell: Cell, t: Transfer) -> list[str]:
        missing = [] if find(t.local_dir, ".ferry-tmp") else [f"temp file {self.FOCUS}.ferry-tmp"]
        if self.tracker(cell, ".ferry-tracker") is None:
            missing.append(f"tracker {self.FOCUS}.*.ferry-tracker in --state-dir")
        return missing

    def rerun_traffic(self, cell: Cell, t: Transfer, done: dict[int, int]) -> tuple[int, int, str]:
        moved = cell.proxy.body_bytes("GET", cell.backend.download_match(cell.prefix))  # every object's reads
        allowed = len(t.data) - sum(done.values()) + self.unfinished_others(cell, t)
        return moved, allowed, "body bytes (all objects)"

    def change_source(self, cell: Cell, t: Transfer, new: bytes) -> None:
        cell.backend.seed(t.key, new)
        t.data = new


class BulkUpload(Bulk):
    """ferry cp -r FOLDER PREFIX: large.bin as an S3 multipart upload (its tracker in
    --state-dir), the small objects in one PUT each."""

    name = "bulk-upload"
    direction = "upload"
    data_in_answers = False
    writes_remote = True

    def not_applicable(self, fault: str, backend: type[Backend]) -> str | None:
        if fault == "disk-full":
            return "an upload writes no data to the local disk (only a small tracker)"
        return None

    def prepare(self, cell: Cell, local_dir: Path | None) -> Transfer:
        data, others = self.make_objects(cell)
        directory = local_dir or cell.workdir / "src"
        for name, body in {self.FOCUS: data, **others}.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(body)
        destination = cell.backend.url(cell.prefix, cell.proxy_url)
        return Transfer(f"{directory}/", destination, cell.prefix + self.FOCUS, data, directory, others=others)

    def verified(self, backend: Backend) -> str:
        return r"crc32c verified"

    def object_bytes(self, cell: Cell, t: Transfer, name: str) -> bytes | None:
        return cell.backend.read(cell.prefix + name)

    def with_missing_bucket(self, cell: Cell, t: Transfer) -> tuple[Transfer, str]:
        url = cell.backend.missing_bucket_url(cell.prefix)
        missing = Transfer(t.source, url, t.key, t.data, t.local_dir, others=t.others)
        return missing, url.split("/")[2]

    def data_match(self, cell: Cell, t: Transfer) -> tuple[str, str]:
        return cell.backend.upload_method, cell.backend.upload_match  # only large.bin goes in parts

    def done_parts(self, cell: Cell, t: Transfer) -> dict[int, int]:
        tracker = self.tracker(cell, ".ferry-upload-tracker")
        return tracker_parts(tracker) if tracker else {}

    def missing_resumable_state(self, cell: Cell, t: Transfer) -> list[str]:
        missing = []
        if self.tracker(cell, ".ferry-upload-tracker") is None:
            missing.append(f"tracker {self.FOCUS}.*.ferry-upload-tracker in --state-dir")
        if not cell.leftovers():
            missing.append("the unfinished multipart upload on the store")
        return missing

    def rerun_traffic(self, cell: Cell, t: Transfer, done: dict[int, int]) -> tuple[int, int, str]:
        objects = [cell.backend.download_match(cell.prefix + name) for name in self.names()]
        records = [r for r in list(cell.proxy.records) if r.method == "PUT" and 200 <= r.status < 300]
        moved = sum(r.request_bytes for r in records if any(o + "?" in r.path or r.path.endswith(o) for o in objects))
        allowed = len(t.data) - sum(done.values()) + self.unfinished_others(cell, t)
        return moved, allowed, "body bytes uploaded (all objects)"

    def change_source(self, cell: Cell, t: Transfer, new: bytes) -> None:
        with open(t.local_dir / self.FOCUS, "r+b") as f:  # in place, same size, as for a single upload
            f.write(new)
        t.data = new


class BulkUploadManifestOnStore(BulkUpload):
    """ferry cp -r FOLDER PREFIX --manifest s3://.../rows.jsonl: the manifest is an object, written
    through a spool in --state-dir and uploaded when the run ends (also when it fails); a killed
    run leaves the spool, and the rerun continues it. The spool is a leftover once a run ended."""

    name = "bulk-upload-manifest-on-store"
    manifest_on_store = True

    def title(self, backend: type[Backend]) -> str:
        return f"bulk upload {backend.title}, stored manifest"
