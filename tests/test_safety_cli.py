"""Safety defects found by trying ``ferry cp`` as a hostile user would; each test failed before its fix.

Everything runs the real CLI in a subprocess against SeaweedFS, through the fault proxy where a
fault or a slow link is needed, and small real servers on loopback for what SeaweedFS won't do
(a server that never answers, a redirect loop).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ferry_provider.hooks.http import FerryHTTPHook
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.transfer.checkpoint import Checkpoint
from tests.conftest import PROXY_BUCKET, S3_CONN, make_s3_bucket, put_object
from tests.servers.seaweedfs import S3Endpoint
from tests.stores import MiB, crc32c_hex, unique_prefix

FERRY = [sys.executable, "-m", "ferry_provider.cli"]
BUCKET = "ferry-safety"


def ferry(*argv: str, cwd: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FERRY, *argv], capture_output=True, text=True, timeout=180, cwd=cwd, env=env or os.environ.copy()
    )


def start_ferry(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FERRY, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def tracker_parts(path: str) -> dict:
    try:
        return Checkpoint.peek(path).parts
    except (OSError, ValueError):
        return {}


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def s3_env(endpoint: S3Endpoint, url: str | None = None) -> dict[str, str]:
    """The bare store's environment (no Airflow connection) for ``endpoint`` or another URL."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AWS_"))}
    return {
        **clean,
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        "AWS_ENDPOINT_URL": url or endpoint.url,
        "AWS_DEFAULT_REGION": endpoint.region,
    }


# -- 1. two writers, one destination --------------------------------------------------------
def test_a_second_writer_to_the_same_destination_fails_at_once_and_the_first_publishes_its_bytes(
    s3_proxy, tmp_path
) -> None:
    _, direct, proxy = s3_proxy
    url_a, data_a = put_object(direct, 16 * MiB, "a.bin")
    url_b, _ = put_object(direct, 16 * MiB, "b.bin")
    # Run 1's second range is held by the proxy until run 2 has tried: run 2 lands in its middle
    # however slow or loaded the machine (a crawling link alone lost that race under load).
    proxy.faults.stall_methods, proxy.faults.stall_after_requests, proxy.faults.stall_times = ("GET",), 1, 1
    proxy.faults.stall_seconds = 120
    dest = tmp_path / "x"
    first = start_ferry("cp", url_a, str(dest), "--conn", "ferry_proxy_s3", "-j", "1", "--part-size", "2MiB", "-q")
    wait_for(lambda: len(tracker_parts(f"{dest}.ferry-tracker")) >= 1, "run 1 to write a part")
    second = ferry("cp", url_b, str(dest), "--conn", S3_CONN, "-j", "1", "-q")
    assert second.returncode == 1
    assert f"destination is being written by another transfer (pid {first.pid})" in one_line(second.stderr)
    proxy.release_stalls()  # the held range's connection closes: run 1 retries it and finishes
    assert first.wait(120) == 0, first.stderr
    assert dest.read_bytes() == data_a
    assert sorted(os.listdir(tmp_path)) == ["x"]


# -- 2. uploads honour the integrity options --------------------------------------------------
def test_upload_checks_expectations_on_the_source_before_sending_a_byte(seaweedfs, tmp_path) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    src = tmp_path / "f.bin"
    data = os.urandom(6 * MiB)
    src.write_bytes(data)
    url = f"s3://{BUCKET}/{unique_prefix()}f.bin"
    bad = ferry("cp", str(src), url, "--conn", S3_CONN, "--expected-digest", "sha256=abab", "--expected-size", "5")
    assert bad.returncode == 1
    assert f"expected 5 bytes, the file has {len(data)}; nothing was uploaded" in one_line(bad.stderr)
    bad = ferry("cp", str(src), url, "--conn", S3_CONN, "--expected-digest", "sha256=abab")
    assert bad.returncode == 1 and "sha256 mismatch: expected abab" in one_line(bad.stderr)
    assert not list(FerryS3Hook(S3_CONN).list(url))  # nothing published
    sha = hashlib.sha256(data).hexdigest()
    good = ferry("cp", str(src), url, "--conn", S3_CONN, "--expected-digest", f"sha256={sha}", "--json", "-q")
    assert good.returncode == 0, good.stderr
    assert "source matched expected sha256" in json.loads(good.stdout)["description"]
    never = ferry("cp", str(src), url + ".2", "--conn", S3_CONN, "--check-hashes", "never", "--json", "-q")
    assert "size verified (check_hashes='never')" in json.loads(never.stdout)["description"]


@pytest.mark.parametrize(
    ("direction", "flags", "message"),
    [
        ("upload", ["--mode", "0640"], "--mode does not apply to uploads"),
        ("download", ["--content-type", "text/plain"], "--content-type does not apply to downloads"),
        ("download", ["--metadata", "a=b"], "--metadata does not apply to downloads"),
    ],
)
def test_an_option_without_meaning_in_a_direction_is_refused(seaweedfs, tmp_path, direction, flags, message) -> None:
    local, remote = str(tmp_path / "f.bin"), f"s3://{BUCKET}/never-touched"
    (tmp_path / "f.bin").write_bytes(b"x")
    argv = [local, remote] if direction == "upload" else [remote, local + ".out"]
    out = ferry("cp", *argv, "--conn", S3_CONN, *flags)
    assert out.returncode == 2 and message in out.stderr


# -- 3. file:// URLs --------------------------------------------------------------------------
def test_file_urls_go_through_the_url_parser(seaweedfs, tmp_path) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    key = f"{unique_prefix()}small"
    FerryS3Hook(S3_CONN).put(f"s3://{BUCKET}/{key}", b"tiny", crc32c=crc32c_hex(b"tiny"))
    out = ferry("cp", f"s3://{BUCKET}/{key}", f"file://{tmp_path}/out/", "--conn", S3_CONN, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "small").read_bytes() == b"tiny"
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no 'file:' folder
    up = ferry("cp", f"file://{tmp_path}/out/small", f"s3://{BUCKET}/{key}.up", "--conn", S3_CONN, cwd="/")
    assert up.returncode == 0, up.stderr
    assert FerryS3Hook(S3_CONN).read_bytes(f"s3://{BUCKET}/{key}.up") == b"tiny"


# -- 5. Ctrl-C and SIGTERM --------------------------------------------------------------------
def test_sigint_stops_a_download_at_once_keeping_what_the_rerun_resumes(s3_proxy, tmp_path) -> None:
    _, direct, proxy = s3_proxy
    url, data = put_object(direct, 24 * MiB)
    proxy.faults.delay_per_chunk = 0.02  # ~3 MiB/s per connection: the whole download takes seconds
    dest = tmp_path / "big.bin"
    tracker = f"{dest}.ferry-tracker"
    child = start_ferry("cp", url, str(dest), "--conn", "ferry_proxy_s3", "-j", "2", "--part-size", "2MiB", "--json")
    wait_for(lambda: len(tracker_parts(tracker)) >= 2, "two finished parts")
    at_signal = len(tracker_parts(tracker))
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    assert child.wait(30) == 130
    print(f"SIGINT to exit: {time.monotonic() - sent:.2f} s")
    assert "stopped: interrupted by SIGINT; partial download kept" in one_line(child.stderr.read())
    row = json.loads(child.stdout.read())
    assert row["result"] == "error" and "interrupted by SIGINT" in row["description"]
    # Parts in flight were abandoned, not finished: at most one more per worker got recorded.
    kept = tracker_parts(tracker)
    assert at_signal <= len(kept) <= at_signal + 2 < 12
    assert not dest.exists() and os.path.exists(f"{dest}.ferry-tmp")
    assert oct(os.stat(tracker).st_mode & 0o777) == "0o600"
    time.sleep(1.5)  # the dead client's requests drain through the proxy; reset() then disowns them
    proxy.reset()
    rerun = ferry("cp", url, str(dest), "--conn", "ferry_proxy_s3", "-j", "2", "--part-size", "2MiB", "--json", "-q")
    assert rerun.returncode == 0, rerun.stderr
    assert dest.read_bytes() == data
    assert proxy.body_bytes("GET") == len(data) - sum(p["size"] for p in kept.values())
    assert sorted(os.listdir(tmp_path)) == ["big.bin"]


def upload_in_flight(tmp_path, proxy) -> tuple[subprocess.Popen[str], str, bytes, str]:
    """A 40 MiB upload in 5 MiB parts crawling through the proxy, with at least two parts done."""
    data = os.urandom(40 * MiB)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    proxy.faults.request_delay = 0.4  # each PUT waits: parts finish one by one
    child = start_ferry("cp", str(src), prefix + "up.bin", "--conn", "ferry_proxy_s3", "-j", "2", "--part-size", "5MiB")

    def tracker() -> str:
        found = [n for n in os.listdir(tmp_path) if n.endswith(".ferry-upload-tracker")]
        return str(tmp_path / found[0]) if found else ""

    wait_for(lambda: bool(tracker()) and len(tracker_parts(tracker())) >= 2, "two uploaded parts")
    return child, prefix, data, tracker()


def test_sigterm_stops_an_upload_keeping_it_for_the_rerun(s3_proxy, tmp_path) -> None:
    _, direct, proxy = s3_proxy
    child, prefix, data, tracker = upload_in_flight(tmp_path, proxy)
    child.send_signal(signal.SIGTERM)
    assert child.wait(30) == 143
    assert "interrupted by SIGTERM; unfinished upload" in one_line(child.stderr.read())
    kept = Checkpoint.peek(tracker)
    assert [u.upload_id for u in direct.list_multipart_uploads(prefix)] == [kept.extra["upload_id"]]
    time.sleep(1.5)
    proxy.reset()
    rerun = ferry("cp", str(tmp_path / "up.bin"), prefix + "up.bin", "--conn", "ferry_proxy_s3", "--part-size", "5MiB")
    assert rerun.returncode == 0, rerun.stderr
    sent = sorted(int(r.path.split("partNumber=")[1].split("&")[0]) for r in proxy.records if "partNumber=" in r.path)
    assert sent == [n + 1 for n in range(8) if n not in kept.parts]
    assert direct.read_bytes(prefix + "up.bin") == data
    assert list(direct.list_multipart_uploads(prefix)) == [] and not os.path.exists(tracker)


# -- 6. no orphaned multipart uploads ---------------------------------------------------------
def no_resume_upload_started(tmp_path, direct, proxy) -> tuple[subprocess.Popen[str], list[str], str, bytes]:
    """A --no-resume upload of 40 MiB crawling through the proxy, its multipart upload created."""
    data = os.urandom(40 * MiB)
    (tmp_path / "up.bin").write_bytes(data)
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    proxy.faults.request_delay = 0.4
    argv = ["cp", str(tmp_path / "up.bin"), prefix + "up.bin", "--conn", "ferry_proxy_s3", "--part-size", "5MiB"]
    child = start_ferry(*argv, "-j", "2", "--no-resume")
    wait_for(lambda: len(list(direct.list_multipart_uploads(prefix))) == 1, "the multipart upload to start")
    return child, argv, prefix, data


def test_sigterm_on_a_no_resume_upload_aborts_it(s3_proxy, tmp_path) -> None:
    _, direct, proxy = s3_proxy
    child, _, prefix, _ = no_resume_upload_started(tmp_path, direct, proxy)
    child.send_signal(signal.SIGTERM)
    assert child.wait(30) == 143
    assert "the unfinished upload was removed (resume is off)" in one_line(child.stderr.read())
    assert list(direct.list_multipart_uploads(prefix)) == []
    assert [n for n in os.listdir(tmp_path) if "ferry" in n] == []


def test_a_no_resume_rerun_aborts_the_upload_a_killed_run_left(s3_proxy, tmp_path) -> None:
    _, direct, proxy = s3_proxy
    child, argv, prefix, data = no_resume_upload_started(tmp_path, direct, proxy)
    wait_for(lambda: any(n.endswith(".ferry-upload-tracker") for n in os.listdir(tmp_path)), "the tracker")
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    time.sleep(1.5)
    proxy.reset()
    rerun = ferry(*argv, "--no-resume", "-q")
    assert rerun.returncode == 0, rerun.stderr
    assert direct.read_bytes(prefix + "up.bin") == data
    assert list(direct.list_multipart_uploads(prefix)) == []  # the killed run's upload is gone too


# -- 8. exit codes and one-line messages --------------------------------------------------------
@pytest.fixture
def small_object(seaweedfs) -> str:
    make_s3_bucket(seaweedfs, BUCKET)
    url = f"s3://{BUCKET}/{unique_prefix()}obj"
    FerryS3Hook(S3_CONN).put(url, b"0123456789", crc32c=crc32c_hex(b"0123456789"))
    return url


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--part-size", "0"], "part_size must be a positive number of bytes, got 0"),
        (["-j", "0"], "argument --parallelism/-j: must be 1 or more, got 0"),
        (["--expected-size", "-5"], "expected_size must be a number of bytes >= 0, got -5"),
        (["--state-dir", "/nonexistent/ferry-state"], "state_dir '/nonexistent/ferry-state' is not an existing"),
        (["--read-timeout", "0"], "argument --read-timeout: must be between 0 and 86400 seconds"),
    ],
)
def test_bad_download_arguments_exit_2_naming_the_value(small_object, tmp_path, flags, message) -> None:
    out = ferry("cp", small_object, str(tmp_path / "dl") + "/", "--conn", S3_CONN, *flags)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert os.listdir(tmp_path) == []  # nothing written, not even a temp file


def test_bad_upload_arguments_exit_2_naming_the_value(seaweedfs, tmp_path) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(6 * MiB))
    url = f"s3://{BUCKET}/{unique_prefix()}f.bin"
    small = ferry("cp", str(src), url, "--conn", S3_CONN, "--part-size", "1MiB")
    assert small.returncode == 2
    assert "part_size 1048576 is below the store's minimum part size of 5242880 bytes" in one_line(small.stderr)
    meta = ferry("cp", str(src), url, "--conn", S3_CONN, "--metadata", "owner=Zoë")
    assert meta.returncode == 2 and "S3 metadata keys and values must be ASCII" in one_line(meta.stderr)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    piped = ferry("cp", str(fifo), url, "--conn", S3_CONN)  # used to wait for a writer forever
    assert piped.returncode == 2 and "is not a regular file" in one_line(piped.stderr)
    assert not list(FerryS3Hook(S3_CONN).list(url))


def test_upload_to_a_folder_url_appends_the_file_name(seaweedfs, tmp_path) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    (tmp_path / "name.bin").write_bytes(b"abc")
    prefix = f"s3://{BUCKET}/{unique_prefix()}dir/"
    out = ferry("cp", str(tmp_path / "name.bin"), prefix, "--conn", S3_CONN, "--json", "-q")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["destination"] == prefix + "name.bin"
    assert FerryS3Hook(S3_CONN).read_bytes(prefix + "name.bin") == b"abc"


def test_destination_errors_blame_the_right_path(small_object, tmp_path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "missing" / "target")
    out = ferry("cp", small_object, str(link), "--conn", S3_CONN)
    assert out.returncode == 2
    assert f"destination '{link}' is a dangling symbolic link" in one_line(out.stderr)
    assert sorted(os.listdir(tmp_path)) == ["link"]


@pytest.mark.parametrize("url", ["/tmp", "http://127.0.0.1:9/x"])
def test_cleanup_refuses_stores_without_unfinished_uploads(url: str) -> None:
    out = ferry("cleanup", url)
    assert out.returncode == 2 and "ferry cleanup removes unfinished uploads from s3:// and gs://" in out.stderr


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_loop_fails_once_without_retries(tmp_path) -> None:
    hits: list[str] = []

    class Loop(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", "/a" if self.path == "/b" else "/b")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Loop) as base:
        out = ferry("cp", f"{base}/a", str(tmp_path / "out"))
    assert out.returncode == 1 and "too many redirects" in one_line(out.stderr)
    assert len(hits) <= 31  # requests' 30 redirects, once: a loop is not retried


@pytest.mark.parametrize(("secret", "code"), [("supersecret", 1), ("super/secret+value", 2)])
def test_credentials_in_an_endpoint_url_are_never_printed(seaweedfs, secret: str, code: int) -> None:
    """Unreachable (exit 1), or not even a valid URI to botocore (exit 2): scrubbed either way."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = s3_env(seaweedfs, f"http://AKIAFERRY:{secret}@127.0.0.1:{port}")
    out = ferry("stat", "s3://ferry-safety/k", "--connect-timeout", "1", env=env)
    assert out.returncode == code
    line = one_line(out.stderr)
    assert secret not in line and "AKIAFERRY" not in line and "***@127.0.0.1" in line


# -- 9. modes -----------------------------------------------------------------------------------
def test_downloads_follow_the_umask_or_the_mode_given(small_object, tmp_path) -> None:
    umask_022 = subprocess.run(
        [*FERRY, "cp", small_object, str(tmp_path / "a"), "--conn", S3_CONN],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert umask_022.returncode == 0, umask_022.stderr
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == "0o644"
    out = ferry("cp", small_object, str(tmp_path / "b"), "--conn", S3_CONN, "--mode", "0640")
    assert out.returncode == 0, out.stderr
    assert oct((tmp_path / "b").stat().st_mode & 0o777) == "0o640"


# -- 10. a server that accepts and never answers --------------------------------------------------
@contextlib.contextmanager
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """Accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_silent_server_costs_one_read_timeout_per_attempt(seaweedfs, tmp_path) -> None:
    with silent_server() as (base, accepted):
        stat = ferry("stat", f"{base}/x", "--read-timeout", "1")
        assert stat.returncode == 1 and "ReadTimeout" in one_line(stat.stderr)
        assert len(accepted) == 1
        env = s3_env(seaweedfs, base)
        s3 = ferry("stat", "s3://ferry-safety/k", "--read-timeout", "1", env=env)
        assert s3.returncode == 1 and "Read timeout" in one_line(s3.stderr)
        accepted.clear()
        cp = ferry("cp", f"{base}/x", str(tmp_path / "x"), "--read-timeout", "1")
        assert cp.returncode == 1 and "gave up after 5 attempts" in one_line(cp.stderr)
        assert len(accepted) == 5  # each stall is one attempt of the retry budget
    assert os.listdir(tmp_path) == []


# -- found by a second hostile pass -------------------------------------------------------------
def test_urls_are_taken_as_given_and_control_characters_refused(seaweedfs, tmp_path) -> None:
    """Spaces used to be stripped (the neighbouring object was fetched, row OK); tabs and line
    breaks silently dropped by the URL parser."""
    make_s3_bucket(seaweedfs, BUCKET)
    prefix = f"s3://{BUCKET}/{unique_prefix()}"
    hook = FerryS3Hook(S3_CONN)
    hook.put(prefix + "k ", b"with a space", crc32c=crc32c_hex(b"with a space"))
    hook.put(prefix + "k", b"without", crc32c=crc32c_hex(b"without"))
    out = ferry("cp", prefix + "k ", str(tmp_path / "x "), "--conn", S3_CONN)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x ").read_bytes() == b"with a space" and not (tmp_path / "x").exists()
    tab = ferry("cp", prefix + "t\tab", str(tmp_path / "t"), "--conn", S3_CONN)
    assert tab.returncode == 2 and "contains the control character '\\t'" in one_line(tab.stderr)
    secret = ferry("cp", f"s3://AKIAFERRY:SuperSecret42@{BUCKET}/k", str(tmp_path / "s"))
    assert secret.returncode == 2 and "carries credentials" in one_line(secret.stderr)
    assert "SuperSecret42" not in secret.stderr and "AKIAFERRY" not in secret.stderr


def test_destinations_ferry_must_not_replace_are_refused(small_object, tmp_path) -> None:
    os.mkfifo(tmp_path / "pipe")
    fifo = ferry("cp", small_object, str(tmp_path / "pipe"), "--conn", S3_CONN)
    assert fifo.returncode == 2 and "exists and is not a regular file" in one_line(fifo.stderr)
    reserved = ferry("cp", small_object, str(tmp_path / "x.ferry-tmp"), "--conn", S3_CONN)
    assert reserved.returncode == 2 and "a name Ferry keeps for its own files" in one_line(reserved.stderr)
    assert sorted(os.listdir(tmp_path)) == ["pipe"]


def test_duplicate_digests_and_odd_paths_in_messages(small_object, tmp_path) -> None:
    twice = ferry("cp", small_object, str(tmp_path / "d"), "--conn", S3_CONN, "--expected-digest", "md5=00")
    assert twice.returncode == 1  # a wrong md5 fails; given twice, the same key must not quietly win
    twice = ferry(
        "cp",
        small_object,
        str(tmp_path / "d"),
        "--conn",
        S3_CONN,
        "--expected-digest",
        "md5=00",
        "--expected-digest",
        "MD5=11",
    )
    assert twice.returncode == 2 and "--expected-digest 'MD5' is given twice" in one_line(twice.stderr)
    odd = ferry("cp", str(tmp_path / "no\nsuch"), f"s3://{BUCKET}/x", "--conn", S3_CONN)
    assert odd.returncode == 2 and "\\n" in one_line(odd.stderr)


def test_a_reader_that_goes_away_does_not_fail_a_finished_download(small_object, tmp_path) -> None:
    shell = (
        f"{' '.join(FERRY)} cp {small_object} {tmp_path}/out --conn {S3_CONN} --json | true; echo rc=${{PIPESTATUS[0]}}"
    )
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120)
    assert "rc=0" in done.stdout, done.stderr
    assert (tmp_path / "out").read_bytes() == b"0123456789"


def test_connection_headers_do_not_follow_a_redirect_to_another_host(monkeypatch) -> None:
    """requests drops Authorization when a redirect leaves the host; an API key given as a
    connection header is a credential too."""
    seen: list[dict[str, str]] = []

    class Target(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Target) as target:
        other_host = target.replace("127.0.0.1", "localhost")

        class Redirect(Target):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", f"{other_host}/f")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with http_server(Redirect) as start:
            conn = {"conn_type": "ferry_http", "host": "127.0.0.1", "password": "tok"}
            conn["extra"] = {"auth_type": "bearer", "headers": {"X-Api-Key": "key-sentinel"}}
            monkeypatch.setenv("AIRFLOW_CONN_KEYED", json.dumps(conn))
            assert FerryHTTPHook("keyed").read_bytes(f"{start}/f") == b"ok"
    assert len(seen) == 1
    sent = {k.lower(): v for k, v in seen[0].items()}
    assert "x-api-key" not in sent and "authorization" not in sent, sent
