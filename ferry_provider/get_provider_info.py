"""Provider metadata read by Airflow's provider manager (entry point ``apache_airflow_provider``).

Connection forms are declared as data (``conn-fields`` / ``ui-field-behaviour``): the form
methods on hooks are deprecated since Airflow 3.2.
"""

from __future__ import annotations

from typing import Any


def _field(label: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"label": label, "schema": {"type": [kind, "null"], **extra}}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-ferry",
        "name": "Ferry",
        "description": "Fast, verified bulk transfers between S3, GCS, HTTP(S) and local storage: "
        "parallel ranged downloads, composite uploads, checkpoint/resume and hash validation.",
        "integrations": [
            {
                "integration-name": "Ferry",
                "external-doc-url": "https://pypi.org/project/airflow-provider-ferry/",
                "tags": ["storage"],
            },
        ],
        "hooks": [
            {
                "integration-name": "Ferry",
                "python-modules": [
                    "ferry_provider.hooks.s3",
                    "ferry_provider.hooks.gcs",
                    "ferry_provider.hooks.http",
                    "ferry_provider.hooks.local",
                ],
            },
        ],
        "operators": [
            {
                "integration-name": "Ferry",
                "python-modules": [
                    "ferry_provider.operators.download",
                    "ferry_provider.operators.upload",
                    "ferry_provider.operators.copy",
                    "ferry_provider.operators.bulk",
                ],
            },
        ],
        "sensors": [{"integration-name": "Ferry", "python-modules": ["ferry_provider.sensors.artifact"]}],
        "triggers": [{"integration-name": "Ferry", "python-modules": ["ferry_provider.triggers.artifact"]}],
        "connection-types": [
            {
                "connection-type": "ferry_s3",
                "hook-class-name": "ferry_provider.hooks.s3.FerryS3Hook",
                "hook-name": "Ferry S3 / S3-compatible storage",
                "conn-fields": {
                    "endpoint_url": _field("Endpoint URL (S3-compatible stores)"),
                    "region_name": _field("Region"),
                    "addressing_style": _field("Addressing style", enum=["auto", "path", "virtual", None]),
                    "aws_session_token": _field("Session token", format="password"),
                    "verify": _field("Verify TLS (true/false or CA bundle path)"),
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port"],
                    "relabeling": {"login": "Access key ID", "password": "Secret access key"},
                    "placeholders": {"endpoint_url": "http://127.0.0.1:8333", "region_name": "us-east-1"},
                },
            },
            {
                "connection-type": "ferry_gcs",
                "hook-class-name": "ferry_provider.hooks.gcs.FerryGCSHook",
                "hook-name": "Ferry Google Cloud Storage",
                "conn-fields": {
                    "key_path": _field("Service account key file path"),
                    "keyfile_dict": _field("Service account key JSON", format="password"),
                    "endpoint_url": _field("Endpoint URL (emulators)"),
                    "anonymous": _field("Send no credentials", "boolean"),
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port", "login", "password"],
                    "relabeling": {},
                    "placeholders": {"endpoint_url": "https://storage.googleapis.com"},
                },
            },
            {
                "connection-type": "ferry_http",
                "hook-class-name": "ferry_provider.hooks.http.FerryHTTPHook",
                "hook-name": "Ferry HTTP(S) source",
                "conn-fields": {
                    "auth_type": _field("Auth type", enum=["basic", "bearer", None]),
                    "proxy": _field("Proxy URL"),
                    "verify": _field("Verify TLS (true/false or CA bundle path)"),
                    "cert": _field("Client certificate path"),
                    "key": _field("Client key path"),
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "Send credentials only to host", "password": "Password or token"},
                    "placeholders": {},
                },
            },
            {
                "connection-type": "ferry_local",
                "hook-class-name": "ferry_provider.hooks.local.FerryLocalHook",
                "hook-name": "Ferry local files",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port", "login", "password", "extra"],
                    "relabeling": {},
                    "placeholders": {},
                },
            },
        ],
    }
