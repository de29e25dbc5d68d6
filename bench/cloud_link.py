"""A cloud-like link on loopback: nginx in front of SeaweedFS and of a directory of files.

Two things make a cloud store's link differ from loopback, and both decide how many connections
pay: each connection is capped (S3 serves roughly 50-100 MB/s per connection) and every request
waits a round trip before its first byte. nginx gives both: ``limit_rate`` caps what one
connection receives, and a Lua ``ngx.sleep`` delays every request. One port proxies S3 (SigV4
still checks: the client's Host header is passed through), the other serves files over HTTP with
Range support, for HTTP downloaders. nginx caps responses only (it has no rate limit for request
bodies), so uploads through it see the delay but not the cap.

Debian's ``nginx-light`` and ``libnginx-mod-http-lua`` (and ``aria2``, the HTTP peer W2 runs) are
installed with apt-get when missing.
"""

from __future__ import annotations

import os
import shutil

from scripts.debian import apt_install
from tests.servers.process import ServerProcess, start_server

MODULES = "/usr/lib/nginx/modules"
PACKAGES = ["nginx-light", "libnginx-mod-http-lua", "aria2"]


def ensure_nginx() -> str:
    """The nginx binary, with its Lua module; installed from Debian's packages when missing."""
    if not (shutil.which("nginx") and shutil.which("aria2c") and os.path.exists(f"{MODULES}/ngx_http_lua_module.so")):
        apt_install(PACKAGES, "the cloud-like link (W2)")
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    return binary


def config(workdir: str, ports: list[int], s3_port: int, files: str, rate_mib: int, delay_s: float) -> str:
    """nginx.conf for the two listeners; every path nginx writes is under ``workdir``."""
    link = f"access_by_lua_block {{ ngx.sleep({delay_s}) }}\n            limit_rate {rate_mib}m;"
    temp = "\n    ".join(
        f"{kind}_temp_path {workdir}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
load_module {MODULES}/ndk_http_module.so;
load_module {MODULES}/ngx_http_lua_module.so;
daemon off;
worker_processes 2;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    {temp}
    sendfile on;
    upstream seaweedfs {{ server 127.0.0.1:{s3_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{ports[0]};
        client_max_body_size 0;
        location / {{
            {link}
            proxy_pass http://seaweedfs;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            # limit_rate paces only buffered responses; buffers in memory, never a temp file
            proxy_buffering on;
            proxy_buffers 16 256k;
            proxy_max_temp_file_size 0;
            proxy_request_buffering off;
            proxy_read_timeout 300s;
        }}
    }}
    server {{
        listen 127.0.0.1:{ports[1]};
        root {files};
        location / {{
            {link}
        }}
    }}
}}
"""


def start_cloud_link(
    workdir: str, s3_port: int, files: str, rate_mib: int = 32, delay_s: float = 0.02
) -> tuple[ServerProcess, str, str]:
    """nginx capping each connection at ``rate_mib`` MiB/s and delaying each request by
    ``delay_s``; returns it, the S3 endpoint through it and the HTTP root URL for ``files``."""
    binary = ensure_nginx()
    os.makedirs(workdir, exist_ok=True)
    conf = os.path.join(workdir, "nginx.conf")

    def argv(ports: list[int]) -> list[str]:
        with open(conf, "w") as f:
            f.write(config(workdir, ports, s3_port, files, rate_mib, delay_s))
        return [binary, "-c", conf, "-p", workdir, "-e", f"{workdir}/error.log"]

    proc, ports = start_server(
        "nginx cloud link",
        os.path.join(workdir, "nginx.log"),
        2,
        argv,
        lambda ports: f"http://127.0.0.1:{ports[1]}/",
    )
    return proc, f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
