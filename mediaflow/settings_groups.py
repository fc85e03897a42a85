"""The settings grouped by concern: typed, read-only views of `Settings`' flat fields.

The flat names (KAFKA_TOPIC, WEBHOOK_TIMEOUT_S, ...) are the contract with the environment and `.env`
files, so they stay where they are, in settings.py. A group names each value once more, for code:
`settings.kafka.topic`, `settings.webhooks.timeout_s`. A function that needs one concern takes its
group (`ensure_topic(kafka: KafkaSettings)`), which says what it reads and lets a test build just that.

Each group field names the flat field it comes from (`env("KAFKA_TOPIC")`); every flat field belongs to
exactly one group, and each value fits its group's type (tests/test_settings_groups.py checks both).
A group is built on each access, from the values the settings hold then.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import SecretStr

_Group = TypeVar("_Group")


def env(name: str) -> Any:
    """A group field read from the flat setting `name`."""
    return dataclasses.field(metadata={"env": name})


def env_names(group: type) -> dict[str, str]:
    """{group field: flat setting} of a group class."""
    return {field.name: field.metadata["env"] for field in dataclasses.fields(group)}


def build(group: type[_Group], settings: object) -> _Group:
    return group(**{name: getattr(settings, flat) for name, flat in env_names(group).items()})


@dataclasses.dataclass(frozen=True)
class BackendChoices:
    """Which store, queue and storage run (QUEUE_BACKEND/STORAGE_BACKEND are filled in when unset)."""

    store: Literal["sqlite", "mongodb", "dynamodb"] = env("DB_BACKEND")
    queue: Literal["embedded", "kafka"] = env("QUEUE_BACKEND")
    storage: Literal["local", "s3"] = env("STORAGE_BACKEND")


@dataclasses.dataclass(frozen=True)
class StoreSettings:
    database: str = env("DB_NAME")
    mongo_url: str = env("MONGO_URL")
    mongo_jobs_collection: str = env("MONGO_JOBS_COLLECTION")
    sqlite_path: Path = env("SQLITE_PATH")


@dataclasses.dataclass(frozen=True)
class AwsSettings:
    region: str = env("AWS_REGION")
    access_key: str | None = env("AWS_ACCESS_KEY")
    access_key_id: str | None = env("AWS_ACCESS_KEY_ID")
    secret_access_key: SecretStr | None = env("AWS_SECRET_ACCESS_KEY")
    endpoint_url: str | None = env("AWS_ENDPOINT_URL")
    s3_endpoint_url: str | None = env("S3_ENDPOINT_URL")
    dynamodb_endpoint_url: str | None = env("DYNAMODB_ENDPOINT_URL")


@dataclasses.dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = env("KAFKA_BOOTSTRAP_SERVERS")
    topic: str = env("KAFKA_TOPIC")
    consumer_group: str = env("KAFKA_CONSUMER_GROUP")
    topic_partitions: int = env("KAFKA_TOPIC_PARTITIONS")
    session_timeout_ms: int = env("KAFKA_SESSION_TIMEOUT_MS")
    heartbeat_interval_ms: int = env("KAFKA_HEARTBEAT_INTERVAL_MS")
    delivery_timeout_s: float = env("KAFKA_DELIVERY_TIMEOUT_S")
    fetch_wait_max_ms: int = env("KAFKA_FETCH_WAIT_MAX_MS")
    # Only Kafka has jobs that wait for a busy partition: how long before an idle worker takes them.
    queued_sweep_after_s: float = env("QUEUED_SWEEP_AFTER_S")


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    output_bucket: str = env("OUTPUT_BUCKET")
    output_prefix: str = env("OUTPUT_PREFIX")
    local_dir: Path = env("LOCAL_STORAGE_DIR")
    presigned_downloads: bool = env("S3_PRESIGNED_DOWNLOADS")
    presign_expires_s: int = env("S3_PRESIGN_EXPIRES_S")
    destination_buckets: list[str] | None = env("S3_DESTINATION_BUCKETS")  # see Settings' default for it


@dataclasses.dataclass(frozen=True)
class RetentionSettings:
    job_retention_hours: float = env("JOB_RETENTION_HOURS")
    sweep_interval_s: float = env("RETENTION_SWEEP_INTERVAL_S")


@dataclasses.dataclass(frozen=True)
class SourceSettings:
    local_roots: list[Path] = env("LOCAL_SOURCE_ROOTS")
    upload_max_bytes: int = env("UPLOAD_MAX_BYTES")
    s3_buckets: list[str] | None = env("S3_SOURCE_BUCKETS")  # as configured; see Settings.s3_source_buckets
    url_allow_private: bool = env("SOURCE_URL_ALLOW_PRIVATE")
    url_max_bytes: int | None = env("SOURCE_URL_MAX_BYTES")  # None: UPLOAD_MAX_BYTES
    url_timeout_s: float = env("SOURCE_URL_TIMEOUT_S")


@dataclasses.dataclass(frozen=True)
class InputLimits:
    """Checked on the probed input before encoding, and enforced while ffmpeg decodes (media/limits.py)."""

    max_duration_s: float = env("MAX_INPUT_DURATION_S")
    max_dimension: int = env("MAX_INPUT_DIMENSION")
    max_pixels: int = env("MAX_INPUT_PIXELS")
    max_streams: int = env("MAX_INPUT_STREAMS")


@dataclasses.dataclass(frozen=True)
class FfmpegSettings:
    binary: str | None = env("FFMPEG_BINARY")
    probe_binary: str | None = env("FFPROBE_BINARY")
    threads: int = env("FFMPEG_THREADS")
    max_memory_mb: int = env("FFMPEG_MAX_MEMORY_MB")


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = env("WORKER_CONCURRENCY")
    api_workers: int | None = env("API_WORKERS")
    lease_seconds: float = env("LEASE_SECONDS")
    max_attempts: int = env("MAX_ATTEMPTS")
    poll_interval_s: float = env("POLL_INTERVAL_S")
    job_timeout_s: float = env("JOB_TIMEOUT_S")
    stall_timeout_s: float = env("STALL_TIMEOUT_S")
    shutdown_grace_s: float = env("SHUTDOWN_GRACE_S")
    storage_retries: int = env("STORAGE_RETRIES")
    progress_write_interval_s: float = env("PROGRESS_WRITE_INTERVAL_S")
    work_dir: Path | None = env("WORK_DIR")
    chunk_seconds: float = env("CHUNK_SECONDS")
    chunk_min_source_s: float = env("CHUNK_MIN_SOURCE_S")


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    url: str | None = env("WEBHOOK_URL")
    secret: SecretStr | None = env("WEBHOOK_SECRET")
    retry_for_s: float = env("WEBHOOK_RETRY_FOR_S")
    timeout_s: float = env("WEBHOOK_TIMEOUT_S")
    backoff_base_s: float = env("WEBHOOK_BACKOFF_BASE_S")
    allow_private: bool = env("WEBHOOK_ALLOW_PRIVATE")
    shutdown_grace_s: float = env("WEBHOOK_SHUTDOWN_GRACE_S")
    sweep_interval_s: float = env("WEBHOOK_SWEEP_INTERVAL_S")


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    worker_port: int | None = env("WORKER_METRICS_PORT")
    host: str = env("METRICS_HOST")
    job_counts_ttl_s: float = env("METRICS_JOB_COUNTS_TTL_S")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """The API's HTTP server: where it listens and what a client may hold (api/server.py, request_limits.py)."""

    host: str = env("API_HOST")
    port: int = env("API_PORT")
    max_request_body_bytes: int = env("MAX_REQUEST_BODY_BYTES")
    header_timeout_s: float = env("API_HEADER_TIMEOUT_S")
    body_idle_timeout_s: float = env("API_BODY_IDLE_TIMEOUT_S")
    keepalive_timeout_s: float = env("API_KEEPALIVE_TIMEOUT_S")
    max_connections: int | None = env("API_MAX_CONNECTIONS")


@dataclasses.dataclass(frozen=True)
class AccessSettings:
    """Who may use the API, from where, and how much: keys, host and origin checks, signed links."""

    api_keys: SecretStr = env("API_KEYS")
    allowed_hosts: list[str] | None = env("ALLOWED_HOSTS")
    allowed_origins: list[str] = env("ALLOWED_ORIGINS")
    download_url_expires_s: int = env("DOWNLOAD_URL_EXPIRES_S")
    max_active_jobs_per_key: int = env("MAX_ACTIVE_JOBS_PER_KEY")


@dataclasses.dataclass(frozen=True)
class SseSettings:
    poll_interval_s: float = env("SSE_POLL_INTERVAL_S")
    keepalive_s: float = env("SSE_KEEPALIVE_S")
    max_stream_s: float = env("SSE_MAX_STREAM_S")


@dataclasses.dataclass(frozen=True)
class LogSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = env("LOG_LEVEL")
    format: Literal["console", "json"] = env("LOG_FORMAT")


class SettingsGroups:
    """Mixed into `Settings`: one property per group, so `settings.kafka` is a `KafkaSettings`."""

    @property
    def backends(self) -> BackendChoices:
        return build(BackendChoices, self)

    @property
    def store(self) -> StoreSettings:
        return build(StoreSettings, self)

    @property
    def aws(self) -> AwsSettings:
        return build(AwsSettings, self)

    @property
    def kafka(self) -> KafkaSettings:
        return build(KafkaSettings, self)

    @property
    def storage(self) -> StorageSettings:
        return build(StorageSettings, self)

    @property
    def retention(self) -> RetentionSettings:
        return build(RetentionSettings, self)

    @property
    def sources(self) -> SourceSettings:
        return build(SourceSettings, self)

    @property
    def limits(self) -> InputLimits:
        return build(InputLimits, self)

    @property
    def ffmpeg(self) -> FfmpegSettings:
        return build(FfmpegSettings, self)

    @property
    def worker(self) -> WorkerSettings:
        return build(WorkerSettings, self)

    @property
    def webhooks(self) -> WebhookSettings:
        return build(WebhookSettings, self)

    @property
    def metrics(self) -> MetricsSettings:
        return build(MetricsSettings, self)

    @property
    def server(self) -> ServerSettings:
        return build(ServerSettings, self)

    @property
    def access(self) -> AccessSettings:
        return build(AccessSettings, self)

    @property
    def sse(self) -> SseSettings:
        return build(SseSettings, self)

    @property
    def logs(self) -> LogSettings:
        return build(LogSettings, self)


# Every group by its property's name (the settings tests walk them).
GROUPS: dict[str, type] = {
    "backends": BackendChoices,
    "store": StoreSettings,
    "aws": AwsSettings,
    "kafka": KafkaSettings,
    "storage": StorageSettings,
    "retention": RetentionSettings,
    "sources": SourceSettings,
    "limits": InputLimits,
    "ffmpeg": FfmpegSettings,
    "worker": WorkerSettings,
    "webhooks": WebhookSettings,
    "metrics": MetricsSettings,
    "server": ServerSettings,
    "access": AccessSettings,
    "sse": SseSettings,
    "logs": LogSettings,
}
