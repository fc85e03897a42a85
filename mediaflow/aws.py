"""What the S3 and DynamoDB backends share: how an aioboto3 client is configured from settings."""

from __future__ import annotations

from typing import Any, Literal

from botocore.config import Config

from mediaflow.settings import Settings


def client_kwargs(settings: Settings, service: Literal["s3", "dynamodb"]) -> dict[str, Any]:
    """Keyword arguments for `aioboto3.Session().client(service, **kwargs)`.

    Credentials come from the seed's AWS_ACCESS_KEY (or the standard AWS_ACCESS_KEY_ID) and
    AWS_SECRET_ACCESS_KEY; when unset, boto's usual chain (instance role, ~/.aws) applies. The
    endpoint override lets S3- and DynamoDB-compatible servers stand in for AWS.
    """
    kwargs: dict[str, Any] = {"region_name": settings.AWS_REGION}
    if settings.aws_access_key_id and settings.aws_secret:
        kwargs["aws_access_key_id"] = settings.aws_access_key_id
        kwargs["aws_secret_access_key"] = settings.aws_secret
    if service == "s3":
        endpoint = settings.s3_endpoint
        # Path-style addressing works with every S3-compatible server; virtual-hosted style needs DNS.
        kwargs["config"] = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
    else:
        endpoint = settings.dynamodb_endpoint
        kwargs["config"] = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=20)
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    return kwargs


# For start-up and health probes: one attempt and short timeouts. With the data clients' retries an
# endpoint that refuses connections takes 8-15 s to give up; a probe should answer in a second or two.
PROBE_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)


def probe_client_kwargs(settings: Settings, service: Literal["s3", "dynamodb"]) -> dict[str, Any]:
    """Like `client_kwargs`, for a second client that serves only open() and ping()."""
    kwargs = client_kwargs(settings, service)
    return {**kwargs, "config": kwargs["config"].merge(PROBE_CONFIG)}
