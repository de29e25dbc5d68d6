"""Child process: the server's read ceiling, parallel ranged GETs whose bytes are thrown away.

No file, no checksum, no SDK in the loop (a presigned URL over http.client): what the store can
deliver to a client that does nothing with the bytes, for judging downloaders against.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import boto3

from bench.common import vm_hwm

RANGE = 64 << 20


def main() -> None:
    endpoint, bucket, key, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    url = urlsplit(client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}))
    target = f"{url.path}?{url.query}"

    def fetch_all(ranges: list[tuple[int, int]]) -> int:
        conn = http.client.HTTPConnection(url.hostname, url.port)
        view = memoryview(bytearray(4 << 20))
        got = 0
        for start, end in ranges:
            conn.request("GET", target, headers={"Range": f"bytes={start}-{end - 1}"})
            resp = conn.getresponse()
            if resp.status != 206:
                raise RuntimeError(f"range {start}-{end}: HTTP {resp.status}")
            left = end - start
            while left:
                n = resp.readinto(view[: min(len(view), left)])
                if not n:
                    raise RuntimeError(f"range {start}-{end}: short body")
                left -= n
                got += n
        conn.close()
        return got

    ranges = [(start, min(start + RANGE, size)) for start in range(0, size, RANGE)]
    shares = [ranges[i::threads] for i in range(threads)]
    baseline = vm_hwm()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        received = sum(pool.map(fetch_all, shares))
    seconds = time.perf_counter() - started
    if received != size:
        raise RuntimeError(f"received {received} of {size} bytes")
    print(json.dumps({"seconds": seconds, "baseline_rss": baseline}))


if __name__ == "__main__":
    main()
