"""An Amazon connection's ``role_arn``: STS AssumeRole, with the temporary credentials renewed
before they expire, read the way the Amazon provider reads it.

A transfer can outlast a role session (one hour by default), so the keys are botocore
``RefreshableCredentials``: botocore calls AssumeRole again shortly before expiry, between
requests, and every client built from the session signs with the new keys.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions as bex
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials

from ferry_provider.hooks.connection import extra_value
from ferry_provider.hooks.errors import InvalidArgumentError, PermissionDeniedError, TransientError

ASSUME_ROLE = "assume_role"
# STS rejects other characters in RoleSessionName and names longer than 64.
_SESSION_NAME_REFUSED = re.compile(r"[^\w+=,.@-]")
_STS_INVALID = {"ValidationError", "InvalidParameterValue", "MissingParameter", "MalformedPolicyDocument"}
_STS_TRANSIENT = {"Throttling", "ServiceUnavailable", "InternalFailure", "InternalError", "RequestTimeout"}


@dataclass(frozen=True)
class RoleSettings:
    """What AssumeRole is called with; ``parameters`` are its arguments besides RoleArn."""

    role_arn: str
    parameters: dict[str, Any]
    sts_endpoint: str | None
    sts_region: str | None


def role_settings(
    extra: dict[str, Any], conn_id: str | None, endpoint: str | None, region: str | None, origin: str
) -> RoleSettings | None:
    """The connection's role to assume, None when it names none.

    ``assume_role_kwargs`` go to AssumeRole as given (ExternalId, DurationSeconds, Policy, Tags,
    RoleSessionName...); the legacy top-level ``external_id`` fills ExternalId. STS is reached
    at ``service_config.sts.endpoint_url``, else the connection's endpoint (an S3-compatible
    store serves STS on its S3 port), else AWS's.
    """
    role_arn = extra_value(extra, "role_arn")
    method = extra_value(extra, "assume_role_method")
    parameters = _kwargs(extra_value(extra, "assume_role_kwargs"), origin)
    external_id = extra_value(extra, "external_id")
    if role_arn is None:
        named = {"assume_role_method": method, "assume_role_kwargs": parameters or None, "external_id": external_id}
        given = [name for name, value in named.items() if value is not None]
        if given:
            raise InvalidArgumentError(f"{origin}: extra {', '.join(given)} given without role_arn")
        return None
    if not isinstance(role_arn, str) or not role_arn.startswith("arn:"):
        raise InvalidArgumentError(f"{origin}: extra role_arn must be an IAM role ARN (arn:...), got {role_arn!r}")
    if method not in (None, ASSUME_ROLE):
        raise InvalidArgumentError(
            f"{origin}: extra assume_role_method={method!r} not supported by Ferry (only {ASSUME_ROLE!r}); "
            "for SAML or web identity, obtain the role's keys outside and give them as login, password "
            "and aws_session_token"
        )
    if "RoleArn" in parameters:
        raise InvalidArgumentError(f"{origin}: give the role as extra role_arn, not assume_role_kwargs.RoleArn")
    if external_id is not None:
        if parameters.get("ExternalId", external_id) != external_id:
            raise InvalidArgumentError(f"{origin}: extra external_id and assume_role_kwargs.ExternalId differ")
        parameters["ExternalId"] = str(external_id)
    parameters.setdefault("RoleSessionName", session_name(conn_id))
    sts_config = extra_value(extra, "service_config") or {}
    sts_config = sts_config.get("sts") or {} if isinstance(sts_config, dict) else {}
    return RoleSettings(
        role_arn=role_arn,
        parameters=parameters,
        sts_endpoint=extra_value(sts_config, "endpoint_url") or endpoint,
        sts_region=extra_value(sts_config, "region_name") or region,
    )


def session_name(conn_id: str | None) -> str:
    """``ferry_<connection>``: what shows in the role's audit log as the session."""
    return _SESSION_NAME_REFUSED.sub("_", f"ferry_{conn_id or 'environment'}")[:64]


def assumed_role_session(
    base: boto3.session.Session, settings: RoleSettings, origin: str, timeouts: tuple[float, float]
) -> boto3.session.Session:
    """A session whose credentials are the role's, renewed before expiry.

    The first AssumeRole happens here, so a role that cannot be assumed fails the first request
    with the reason rather than somewhere inside a transfer."""
    sts = base.client(
        "sts",
        endpoint_url=settings.sts_endpoint,
        region_name=settings.sts_region,
        config=Config(
            connect_timeout=timeouts[0], read_timeout=timeouts[1], retries={"mode": "standard", "total_max_attempts": 3}
        ),
    )

    def fetch() -> dict[str, str]:
        try:
            answer = sts.assume_role(RoleArn=settings.role_arn, **settings.parameters)
        except bex.ClientError as exc:
            raise _sts_error(exc, settings.role_arn, origin) from None
        except bex.ParamValidationError as exc:
            raise InvalidArgumentError(f"{origin}: extra assume_role_kwargs: {exc}") from None
        except (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError) as exc:
            raise TransientError(f"{origin}: cannot reach STS to assume {settings.role_arn}: {exc}") from None
        except bex.NoCredentialsError:
            raise PermissionDeniedError(
                f"{origin}: no credentials to assume {settings.role_arn} with (login/password, profile, "
                "or boto3's chain)"
            ) from None
        keys = answer["Credentials"]
        return {
            "access_key": keys["AccessKeyId"],
            "secret_key": keys["SecretAccessKey"],
            "token": keys["SessionToken"],
            "expiry_time": keys["Expiration"].isoformat(),
        }

    credentials = RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="sts-assume-role"
    )
    core = botocore.session.Session()
    core.register_component("credential_provider", CredentialResolver([_Given(credentials)]))
    return boto3.session.Session(botocore_session=core, region_name=base.region_name)


class _Given(CredentialProvider):
    """Hands botocore the role's refreshable credentials, and nothing from its default chain."""

    METHOD = "sts-assume-role"
    CANONICAL_NAME = "ferry-assume-role"

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


def _kwargs(value: Any, origin: str) -> dict[str, Any]:
    """assume_role_kwargs as a dict (URI-form connections carry it as a JSON string)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{origin}: extra assume_role_kwargs must be a JSON object")
    return dict(value)


def _sts_error(exc: bex.ClientError, role_arn: str, origin: str) -> Exception:
    err = exc.response.get("Error", {})
    code = str(err.get("Code", ""))
    text = f"{origin}: cannot assume {role_arn}: {code}: {err.get('Message') or code}"
    if code in _STS_INVALID:
        return InvalidArgumentError(text)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in _STS_TRANSIENT or status >= 500 or status == 429:
        return TransientError(text)
    return PermissionDeniedError(text)
