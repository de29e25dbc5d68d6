"""Engine pieces on their own: part plans, CRC32C combining, tracker files, retry waits."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import time
import zlib

import google_crc32c
import pytest

from ferry_provider.hooks.base import ObjectInfo
from ferry_provider.hooks.digests import etag_multipart_md5, etag_part_count
from ferry_provider.hooks.errors import InvalidArgumentError, NotFoundError, TransientError
from ferry_provider.transfer import checksums, crc_math
from ferry_provider.transfer.checkpoint import Checkpoint, tracker_path
from ferry_provider.transfer.download import DownloadOptions
from ferry_provider.transfer.local_names import local_destination
from ferry_provider.transfer.plan import MiB, RangePlan, choose_part_size
from ferry_provider.transfer.retry import RetryPolicy
from ferry_provider.transfer.upload import UploadOptions
from ferry_provider.transfer.verification import Check, choose_checks, digest_of_file


@pytest.mark.parametrize(
    ("size", "parallelism", "expected"),
    [
        (1, 8, 8 * MiB),  # floor
        (100 * MiB, 8, 8 * MiB),  # 100 MiB / 32 parts rounds up to the 8 MiB floor
        (1 << 30, 8, 32 * MiB),  # 1 GiB / 32 parts
        (64 << 30, 8, 64 * MiB),  # ceiling
    ],
)
def test_adaptive_part_size(size: int, parallelism: int, expected: int) -> None:
    assert choose_part_size(size, parallelism) == expected


def test_part_size_respects_store_limits() -> None:
    # Too many parts for S3: the plan raises the part size instead of failing.
    big = 5 * (1 << 40)
    part = choose_part_size(big, 8, requested=64 * MiB, max_parts=10_000, max_part=5 << 30)
    assert -(-big // part) <= 10_000 and part % MiB == 0
    with pytest.raises(ValueError, match=r"part_size 1048576 is below the store.s minimum part size of 5242880 bytes"):
        choose_part_size(100 * MiB, 8, requested=MiB, min_part=5 * MiB)
    # A requested size below the minimum is fine when the whole object fits in one part.
    assert choose_part_size(512 * 1024, 8, requested=MiB, min_part=5 * MiB) == MiB


def test_plan_covers_every_byte_once() -> None:
    for size in (0, 1, MiB - 1, MiB, MiB + 1, 10 * MiB + 3):
        parts = RangePlan(size, MiB).parts
        assert parts[0].start == 0 and parts[-1].end == size
        assert all(a.end == b.start for a, b in itertools.pairwise(parts))
        assert [p.index for p in parts] == list(range(len(parts)))


def test_plan_with_a_layout_never_crosses_an_upload_part() -> None:
    layout = (5 * MiB, 6 * MiB + 17, 3)
    plan = RangePlan(sum(layout), 2 * MiB, layout)
    parts = plan.parts
    assert [p.index for p in parts] == list(range(len(parts)))
    assert all(a.end == b.start for a, b in itertools.pairwise(parts)) and parts[-1].end == plan.size
    assert all(0 < p.size <= 2 * MiB for p in parts)
    spans = plan.parts_by_span()
    assert [(group[0].start, group[-1].end) for group in spans] == plan.spans
    assert [sum(p.size for p in group) for group in spans] == list(layout)
    assert [len(group) for group in spans] == [3, 4, 1]
    with pytest.raises(ValueError, match="adds up to 11534356 bytes, not 12"):
        _ = RangePlan(12, MiB, layout).parts


def test_composite_crc32c_is_the_crc_of_the_part_crcs() -> None:
    chunks = [b"a" * 1000, b"bc" * 777, b"z"]
    part_crcs = [checksums.crc32c(c) for c in chunks]
    joined = b"".join(google_crc32c.value(c).to_bytes(4, "big") for c in chunks)
    assert checksums.CRC32C.composite(part_crcs) == f"{google_crc32c.value(joined):08x}-3"


def test_crc32c_matches_the_reference_and_the_check_value() -> None:
    assert checksums.hex32(checksums.crc32c(b"123456789")) == "e3069283"
    data = os.urandom(100_000)
    assert checksums.crc32c(memoryview(bytearray(data))) == google_crc32c.value(data)


# Each CRC's published check value (the CRC of b"123456789"), and an independent implementation
# where one is installed.
CRC_CHECK_VALUES = {"crc32c": "e3069283", "crc32": "cbf43926", "crc64nvme": "ae8b14860a799888"}


@pytest.mark.parametrize("name", sorted(CRC_CHECK_VALUES))
def test_each_crc_has_its_check_value(name: str) -> None:
    algorithm = checksums.CRCS[name]
    assert algorithm.hex(algorithm.update(b"123456789", 0)) == CRC_CHECK_VALUES[name]
    assert algorithm.update(b"56789", algorithm.update(b"1234", 0)) == algorithm.update(b"123456789", 0)


@pytest.mark.parametrize("name", sorted(CRC_CHECK_VALUES))
def test_combine_equals_crc_of_the_concatenation(name: str) -> None:
    algorithm = checksums.CRCS[name]
    crc = (
        (lambda data: algorithm.update(data, 0))
        if name == "crc64nvme"
        else {"crc32c": google_crc32c.value, "crc32": zlib.crc32}[name]
    )
    rng = random.Random(7)
    for _ in range(100):
        a, b = rng.randbytes(rng.randint(0, 3000)), rng.randbytes(rng.randint(0, 3000))
        want = crc(a + b)
        assert algorithm.combine(crc(a), crc(b), len(b)) == want
        # The pure-Python path (used without awscrt) must agree too.
        assert crc_math.combine(crc(a), crc(b), len(b), algorithm.width, algorithm.poly) == want
    chunks = [rng.randbytes(rng.randint(1, 5000)) for _ in range(20)]
    assert algorithm.combine_all((crc(c), len(c)) for c in chunks) == crc(b"".join(chunks))


@pytest.mark.parametrize("name", sorted(CRC_CHECK_VALUES))
def test_pure_combine_agrees_with_awscrt_for_huge_lengths(name: str) -> None:
    from awscrt import checksums as aws

    aws_combine = getattr(aws, f"combine_{name}")
    algorithm = checksums.CRCS[name]
    rng = random.Random(11)
    for length in (5 << 30, (1 << 40) + 12345, 48 << 40):
        a, b = rng.getrandbits(algorithm.width), rng.getrandbits(algorithm.width)
        assert crc_math.combine(a, b, length, algorithm.width, algorithm.poly) == aws_combine(a, b, length)


def test_file_digest(tmp_path) -> None:
    import hashlib

    data = os.urandom(9 << 20)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert checksums.file_digest(str(path), "sha256") == hashlib.sha256(data).hexdigest()
    assert checksums.file_digest(str(path), "crc32c", 100, 5000) == f"{google_crc32c.value(data[100:5000]):08x}"


def test_checkpoint_round_trip_and_identity_mismatch(tmp_path) -> None:
    path = str(tmp_path / "t.ferry-tracker")
    identity = {"source": "s3://b/k", "size": 10, "etag": "e1", "version": None, "part_size": 4}
    cp = Checkpoint.load(path, identity)
    cp.record(0, crc32c=123, size=4)
    cp.record(2, crc32c=456, size=2)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    again = Checkpoint.load(path, identity)
    assert again.parts == {0: {"crc32c": 123, "size": 4}, 2: {"crc32c": 456, "size": 2}}
    assert Checkpoint.load(path, {**identity, "etag": "e2"}).parts == {}  # source changed
    assert Checkpoint.load(path, {**identity, "part_size": 8}).parts == {}  # different plan
    with open(path, "w") as f:
        f.write("{not json")
    assert Checkpoint.load(path, identity).parts == {}
    assert sorted(os.listdir(tmp_path)) == ["t.ferry-tracker"]  # no temp file left beside it


def test_checkpoint_remembers_its_boot_until_its_parts_are_vouched_for(tmp_path) -> None:
    path = str(tmp_path / "t.ferry-tracker")
    identity = {"source": "s3://b/k", "size": 10, "etag": "e1", "version": None, "part_size": 4}
    Checkpoint.load(path, identity).record(0, crc32c=123, size=4)
    assert Checkpoint.load(path, identity).written_this_boot
    saved = Checkpoint.load(path, identity)
    Checkpoint(path, identity, saved.parts, boot="an-earlier-boot").save()
    old = Checkpoint.load(path, identity)
    assert not old.written_this_boot
    old.forget(0)  # saving while still suspect keeps the earlier boot
    assert not Checkpoint.load(path, identity).written_this_boot
    old.vouch_for_parts()
    assert Checkpoint.load(path, identity).written_this_boot


def test_tracker_in_a_state_dir_has_a_stable_unique_name(tmp_path) -> None:
    a = tracker_path("/data/x/file.bin", str(tmp_path))
    assert a == tracker_path("/data/x/file.bin", str(tmp_path))
    assert a != tracker_path("/data/y/file.bin", str(tmp_path))
    assert os.path.dirname(a) == str(tmp_path)
    assert tracker_path("/data/x/file.bin", None) == "/data/x/file.bin.ferry-tracker"


def test_retry_policy_honours_retry_after_and_gives_up_with_a_count() -> None:
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise TransientError("busy", retry_after=0.3)
        return "done"

    assert RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.5).run(flaky, what="x") == "done"
    assert calls[1] - calls[0] >= 0.29 and calls[2] - calls[1] >= 0.29

    def always() -> None:
        raise TransientError("down")

    with pytest.raises(TransientError, match="part 7: gave up after 2 attempts: down"):
        RetryPolicy(attempts=2, initial_wait=0.01).run(always, what="part 7")

    def missing() -> None:
        calls.append(0)
        raise NotFoundError("gone")

    before = len(calls)
    with pytest.raises(NotFoundError):
        RetryPolicy(attempts=5).run(missing, what="y")
    assert len(calls) == before + 1  # not retried


@pytest.mark.parametrize("options", [DownloadOptions, UploadOptions])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"check_hashes": "sometimes"}, "check_hashes must be one of"),
        ({"parallelism": 0}, "parallelism must be a whole number >= 1, got 0"),
        ({"part_size": 0}, "part_size must be a positive number of bytes, got 0"),
        ({"expected_size": -5}, "expected_size must be a number of bytes >= 0, got -5"),
        ({"expected_digests": {"whirlpool": "00"}}, "unsupported algorithm"),
        ({"expected_digests": {"md5": "xyz"}}, r"expected_digests\['md5'\] must be a hex digest"),
        ({"expected_digests": {"md5": "00"}, "check_hashes": "never"}, "cannot be checked with check_hashes='never'"),
        (
            {"state_dir": "/nonexistent/ferry"},
            "state_dir '/nonexistent/ferry' is not an existing directory",
        ),
    ],
)
def test_options_reject_bad_values_in_every_direction(options: type, kwargs: dict, message: str) -> None:
    """Every option is validated the same way for downloads and uploads, naming the option."""
    with pytest.raises(InvalidArgumentError, match=message):
        options(**kwargs)


def test_manifest_csv_escapes_newlines(tmp_path) -> None:
    import csv

    from ferry_provider.transfer.manifest import ManifestRow
    from ferry_provider.transfer.manifest_file import append_rows

    rows = [ManifestRow("s3://b/k", "/tmp/x", "t0").finish("error", "line one\nline two")]
    append_rows(str(tmp_path / "m.csv"), rows)
    append_rows(str(tmp_path / "m.csv"), rows)
    with open(tmp_path / "m.csv") as f:
        read = list(csv.DictReader(f))
    assert len(read) == 2 and read[0]["Description"] == "line one\\nline two"
    assert json.dumps(rows[0].to_dict())  # JSON-ready for XCom


def test_start_writeback_is_only_a_hint(tmp_path, caplog) -> None:
    from ferry_provider.transfer.writeback import start_writeback

    path = tmp_path / "f.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b"x" * 10000, 0)
        start_writeback(fd, 0, 10000)  # a real file: writeback starts, the bytes stay as written
        caplog.set_level("DEBUG", logger="ferry_provider.transfer")
        start_writeback(fd + 1000, 0, 10000)  # a bad descriptor: logged, never raised
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x" * 10000
    assert "sync_file_range failed (errno 9)" in caplog.text


# -- choosing what proves a download ----------------------------------------------------------
def test_multipart_etags_are_recognised_and_recomputed_from_a_file(tmp_path) -> None:
    assert etag_multipart_md5('"9B2CF535F27731C974343645A3985328-3"') == "9b2cf535f27731c974343645a3985328-3"
    assert etag_part_count('"9b2cf535f27731c974343645a3985328-12"') == 12
    for not_multipart in ("9b2cf535f27731c974343645a3985328", "abc-3", "9b2cf535f27731c974343645a3985328-x", None):
        assert etag_multipart_md5(not_multipart) is None and etag_part_count(not_multipart) == 0
    sizes = [5 * MiB, 3 * MiB + 7, 1]
    data = os.urandom(sum(sizes))
    path = tmp_path / "f"
    path.write_bytes(data)
    chunks = [data[: sizes[0]], data[sizes[0] : sizes[0] + sizes[1]], data[-1:]]
    want = hashlib.md5(b"".join(hashlib.md5(c).digest() for c in chunks)).hexdigest() + "-3"
    assert digest_of_file(str(path), Check("md5", want, tuple(sizes)), workers=3) == want
    assert digest_of_file(str(path), Check("md5", want, tuple(sizes))) == want


def pinned(**digests: str) -> ObjectInfo:
    return ObjectInfo("s3://b/k", 12 * MiB, **digests)


def never_asked() -> list[int]:
    raise AssertionError("the part layout was asked for although a full-object digest was there")


@pytest.mark.parametrize(
    ("digests", "chosen"),
    [
        ({"crc32c": "aa", "crc64nvme": "bb", "crc32": "cc", "md5": "dd"}, "crc32c"),
        ({"crc64nvme": "bb", "crc32": "cc", "md5": "dd"}, "crc64nvme"),
        ({"crc32": "cc", "md5": "dd"}, "crc32"),  # streamed: cheaper than re-reading for the MD5
        ({"crc32c": "aa-2", "md5": "dd"}, "md5"),  # a whole-object value beats a per-part one
    ],
)
def test_the_cheapest_whole_object_digest_is_chosen(digests: dict[str, str], chosen: str) -> None:
    selection = choose_checks(pinned(**digests), "if_fast_else_fail", {}, never_asked)
    assert [c.algorithm for c in selection.checks] == [chosen] and selection.layout == ()


def test_per_part_digests_need_a_layout_with_their_part_count() -> None:
    asked = []

    def layout(sizes: list[int]):
        return lambda: asked.append(1) or sizes

    pin = pinned(crc32="cc-3", multipart_md5="dd-3")
    good = choose_checks(pin, "if_fast_else_fail", {}, layout([4 * MiB, 4 * MiB, 4 * MiB]))
    assert good.checks == (Check("crc32", "cc-3", (4 * MiB,) * 3),)
    assert good.layout == (4 * MiB,) * 3 and good.checks[0].describe() == "composite crc32 of 3 parts"
    etag_only = choose_checks(pinned(multipart_md5="dd-3"), "always", {}, layout([4 * MiB] * 3))
    assert etag_only.layout == ()  # an MD5 is re-read from the file: ranges need not follow the parts
    assert etag_only.checks[0].describe() == "md5 of 3 parts (multipart ETag)"
    wrong_count = choose_checks(pin, "if_fast_else_fail", {}, layout([6 * MiB, 6 * MiB]))
    assert wrong_count.checks == ()
    assert (
        wrong_count.why_none
        == "verified size only: the store keeps a composite (per-part) crc32 and gives no part layout"
    )
    none = choose_checks(pinned(multipart_md5="dd-3"), "if_fast_else_fail", {}, lambda: None)
    assert none.why_none == "verified size only: the store keeps a multipart ETag and gives no part layout"
    assert len(asked) == 3


def test_a_one_part_upload_is_its_own_layout() -> None:
    """ "...-1": the one part is the whole object, so its size is the layout, asked of no one."""
    one = choose_checks(pinned(crc32c="aa-1"), "if_fast_else_fail", {}, never_asked)
    assert one.checks == (Check("crc32c", "aa-1", (12 * MiB,)),) and one.layout == (12 * MiB,)
    assert one.checks[0].describe() == "composite crc32c of 1 part"
    etag = choose_checks(pinned(multipart_md5="dd-1"), "if_fast_else_fail", {}, never_asked)
    assert etag.checks[0].describe() == "md5 of 1 part (multipart ETag)"


def test_caller_digests_win_and_never_checks_nothing() -> None:
    pin = pinned(crc32c="aa", md5="dd")
    selection = choose_checks(pin, "if_fast_else_fail", {"sha256": "EE", "crc32": "ff"}, never_asked)
    assert selection.checks == (Check("sha256", "ee"), Check("crc32", "ff"))
    never = choose_checks(pin, "never", {"sha256": "ee"}, never_asked)
    assert never.checks == () and never.why_none == "verified size only (check_hashes='never')"
    assert (
        choose_checks(pinned(), "always", {}, never_asked).why_none == "verified size only: the source states no digest"
    )


@pytest.mark.parametrize(
    ("digests", "message"),
    [
        ({"blake3": "aa"}, "unsupported algorithm(s) ['blake3']"),
        ({"md5": "not-hex"}, "expected_digests['md5'] must be a hex digest, got 'not-hex'"),
        ({"crc32c": ""}, "expected_digests['crc32c'] must be a hex digest"),
    ],
)
def test_bad_expected_digests_are_named(digests: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        DownloadOptions(expected_digests=digests)
    assert message in str(err.value)


def test_whole_part_ranges_group_upload_parts_up_to_the_part_size() -> None:
    layout = (8 * MiB, 20 * MiB, 8 * MiB, 8 * MiB, 16 * MiB, 1)
    plan = RangePlan(sum(layout), 16 * MiB, layout, whole_parts=True)
    assert [(p.start // MiB, p.end) for p in plan.parts] == [
        (0, 8 * MiB),  # the next upload part would make it 28 MiB
        (8, 28 * MiB),  # one upload part larger than part_size is a range of its own
        (28, 44 * MiB),
        (44, 60 * MiB),
        (60, 60 * MiB + 1),
    ]
    assert [p.index for p in plan.parts] == list(range(5))


@pytest.mark.parametrize(
    ("url", "key"),
    [("s3://bkt/p/x?", "p/x?"), ("gs://bkt/p/h#", "p/h#"), ("s3://bkt/a?b#", "a?b#"), ("s3://bkt/a?b#c/d", "a?b#c/d")],
)
def test_question_marks_and_hashes_belong_to_the_key(url: str, key: str) -> None:
    """urlsplit drops an empty query or fragment: 'x?' named the object 'x' (and overwrote it)."""
    from ferry_provider.hooks.url import parse_url

    parsed = parse_url(url)
    assert (parsed.bucket, parsed.key) == ("bkt", key)
    assert parse_url(parsed.sibling(parsed.key)).key == key


@pytest.mark.parametrize(
    ("url", "path"),
    [("file:///d/b?versionId=x", "/d/b?versionId=x"), ("file://localhost/d/k#", "/d/k#"), ("file:///d/p%41", "/d/pA")],
)
def test_file_urls_keep_question_marks_and_hashes(url: str, path: str) -> None:
    from ferry_provider.hooks.url import parse_url

    assert parse_url(url).key == path


def test_debug_log_lines_lose_their_credentials() -> None:
    from ferry_provider.hooks.log_redaction import CredentialRedactor

    redactor = CredentialRedactor()
    redactor.remember("S3cr3tValue/+x")
    lines = {
        "<SecretAccessKey>abc/DEF+g</SecretAccessKey><SessionToken>tok==</SessionToken>": "abc/DEF+g",
        "GET /b/k?X-Amz-Signature=0a1b2c&X-Amz-Security-Token=IQoJ%2Bz HTTP/1.1": "IQoJ",
        "{'X-Amz-Security-Token': b'IQoJb3JpZ2lu', 'Authorization': b'AWS4 Signature=ffee00'}": "IQoJb3",
        "Signature:\n" + "ab" * 32: "ab" * 32,
        "secret is S3cr3tValue/+x here": "S3cr3tValue",
    }
    for line, secret in lines.items():
        assert secret not in redactor.redact(line), line


def test_a_key_becomes_a_path_only_through_folders_that_stay_inside(tmp_path) -> None:
    """Plain folders are looked at one by one; a link anywhere below the root is resolved, and
    must lead inside it (at any depth, dangling or not)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    (root / "kept").mkdir()
    outside.mkdir()
    os.symlink(outside, root / "a" / "out")
    os.symlink(root / "kept", root / "a" / "in")
    os.symlink(tmp_path / "nowhere", root / "a" / "dangling")
    (root / "a" / "file").write_bytes(b"x")
    real = os.path.realpath(root)
    assert local_destination(str(root), "a/b/c/d.bin", real) == str(root / "a" / "b" / "c" / "d.bin")
    assert local_destination(str(root), "a/in/d.bin", real) == str(root / "a" / "in" / "d.bin")
    for key, target in (("a/out/d.bin", outside), ("a/out/x/y/d.bin", outside), ("a/dangling/d.bin", "nowhere")):
        with pytest.raises(InvalidArgumentError, match=f"key '{key}' .* leads outside it .*{os.path.basename(target)}"):
            local_destination(str(root), key, real)
    # A file where a folder must be is not an escape: the transfer reports the clash.
    assert local_destination(str(root), "a/file/d.bin", real) == str(root / "a" / "file" / "d.bin")


def test_the_retry_policy_tells_of_throttled_attempts_only() -> None:
    heard: list[int] = []
    answers = iter(
        [TransientError("503 SlowDown"), TransientError("connection reset"), TransientError("x", retry_after=0.0)]
    )

    def call() -> str:
        answer = next(answers, None)
        if answer is not None:
            raise answer
        return "done"

    policy = RetryPolicy(attempts=4, initial_wait=0.001, max_wait=0.001, on_throttle=lambda: heard.append(1))
    assert policy.run(call, what="t") == "done"
    assert len(heard) == 2  # the SlowDown and the Retry-After; not the reset
