"""An Amazon connection's ``role_arn``: STS AssumeRole, with the temporary credentials renewed
before they expire, read the way the Amazon provider reads it.

A transfer can outlast a role session (one hour by default), so the keys are botocore
``RefreshableCredentials``: botocore calls AssumeRole again shortly before expiry, between
requests, and every client built from the session signs with the new keys.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions as bex
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials

from ferry_provider.hooks.connection import extra_dict, extra_value
from ferry_provider.hooks.errors import InvalidArgumentError, PermissionDeniedError, TransientError
from ferry_provider.hooks.log_redaction import install

ASSUME_ROLE = "assume_role"
ADVISORY_RENEWAL = 15 * 60.0  # botocore's defaults, for sessions of 45 minutes or more
MANDATORY_RENEWAL = 10 * 60.0
RENEWAL_PAUSE = 30.0  # seconds STS is left alone after a failed renewal
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
    parameters = dict(extra_dict(extra, "assume_role_kwargs", origin))
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
    sts_config = extra_dict(extra_dict(extra, "service_config", origin), "sts", origin)
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
    try:
        sts = base.client(
            "sts",
            endpoint_url=settings.sts_endpoint,
            region_name=settings.sts_region,
            # One attempt: the request that needs the keys is retried by Ferry's own policy.
            config=Config(connect_timeout=timeouts[0], read_timeout=timeouts[1], retries={"total_max_attempts": 1}),
        )
    except ValueError as exc:  # botocore's "Invalid endpoint"
        where = "service_config.sts.endpoint_url or endpoint_url"
        raise InvalidArgumentError(f"{origin}: STS endpoint ({where}): {exc}") from None
    renewal = _Renewal(sts, settings, origin)
    first = renewal.fetch()
    lifetime = (renewal.expires - datetime.now(UTC)).total_seconds()
    credentials = RefreshableCredentials.create_from_metadata(
        metadata=first,
        refresh_using=renewal.fetch,
        method="sts-assume-role",
        # botocore renews at 15 minutes left (and blocks at 10): a 15-minute session would then
        # call STS before every request. Shorter sessions renew at a third of their life.
        advisory_timeout=min(ADVISORY_RENEWAL, lifetime / 3),
        mandatory_timeout=min(MANDATORY_RENEWAL, lifetime / 6),
    )
    core = botocore.session.Session()
    core.register_component("credential_provider", CredentialResolver([_Given(credentials)]))
    return boto3.session.Session(botocore_session=core, region_name=base.region_name)


class _Renewal:
    """AssumeRole, with a pause after a failure: while the keys in hand are still good, botocore
    asks again before every request, and an STS that has stopped answering would make each one
    wait out its timeout."""

    def __init__(self, sts: Any, settings: RoleSettings, origin: str) -> None:
        self.sts = sts
        self.settings = settings
        self.origin = origin
        self._failed_at: float | None = None
        self._failure = ""
        self.expires = datetime.now(UTC)  # of the keys last fetched

    def fetch(self) -> dict[str, str]:
        role = self.settings.role_arn
        if self._failed_at is not None and time.monotonic() - self._failed_at < RENEWAL_PAUSE:
            raise TransientError(f"{self.origin}: renewing the keys of {role} failed moments ago: {self._failure}")
        try:
            answer = self._assume()
        except TransientError as exc:
            self._failed_at, self._failure = time.monotonic(), str(exc)
            raise
        self._failed_at = None
        keys = answer["Credentials"]
        install().remember(keys["SecretAccessKey"], keys["SessionToken"])
        self.expires = keys["Expiration"]
        return {
            "access_key": keys["AccessKeyId"],
            "secret_key": keys["SecretAccessKey"],
            "token": keys["SessionToken"],
            "expiry_time": keys["Expiration"].isoformat(),
        }

    def _assume(self) -> dict[str, Any]:
        role, origin = self.settings.role_arn, self.origin
        try:
            return self.sts.assume_role(RoleArn=role, **self.settings.parameters)
        except bex.ClientError as exc:
            raise _sts_error(exc, role, origin) from None
        except bex.ParamValidationError as exc:
            raise InvalidArgumentError(f"{origin}: extra assume_role_kwargs: {exc}") from None
        except (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError) as exc:
            raise TransientError(f"{origin}: cannot reach STS to assume {role}: {exc}") from None
        except bex.NoCredentialsError:
            raise PermissionDeniedError(
                f"{origin}: no credentials to assume {role} with (login/password, profile, or boto3's chain)"
            ) from None


class _Given(CredentialProvider):
    """Hands botocore the role's refreshable credentials, and nothing from its default chain."""

    METHOD = "sts-assume-role"
    CANONICAL_NAME = "ferry-assume-role"

    def __init__(self, credentials: RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> RefreshableCredentials:
        return self._credentials


def _sts_error(exc: bex.ClientError, role_arn: str, origin: str) -> Exception:
    # Some stores answer STS with an S3-style <Error>, which botocore leaves at the top level.
    err = exc.response.get("Error") or exc.response
    code = str(err.get("Code") or "")
    message = err.get("Message") or code or str(exc)
    text = f"{origin}: cannot assume {role_arn}: {code or 'refused'}: {message}"
    if code in _STS_INVALID:
        return InvalidArgumentError(text)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in _STS_TRANSIENT or status >= 500 or status == 429:
        return TransientError(text)
    return PermissionDeniedError(text)
