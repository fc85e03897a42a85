"""MediaFlow configuration: one `Settings` object read from the environment and `.env`.

The seed README's names (DB_BACKEND, MONGO_URL, KAFKA_TOPIC, OUTPUT_BUCKET, ...) are kept unchanged.
With nothing configured, everything runs embedded: SQLite job store, a queue that claims straight from
the store, and a local output directory.
"""

from __future__ import annotations

import functools
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mediaflow.settings_groups import SettingsGroups
from mediaflow.settings_values import ApiKey, comma_list, parse_api_keys, webhook_signing_key

_SOURCE_BUCKET_ENTRY = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\x00-\x1f\x7f]+)?")


@functools.lru_cache(maxsize=16)
def _resolved_roots(roots: tuple[Path, ...]) -> tuple[Path, ...]:
    # Resolving walks every path component (a stat each): once per set of roots, not per request.
    return tuple(root.expanduser().resolve() for root in roots)


class Settings(BaseSettings, SettingsGroups):
    """Every setting by its environment name (the contract); `settings.kafka`, `settings.webhooks`, … are
    the same values grouped by concern (settings_groups.py), for functions that need one concern."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")
    # How QUEUE_BACKEND and STORAGE_BACKEND were chosen, for the start-up log and /readyz.
    _backend_choices: dict[str, str] = PrivateAttr(default_factory=dict)

    # --- Job store (seed names) -------------------------------------------------------------------
    DB_BACKEND: Literal["sqlite", "mongodb", "dynamodb"] = "sqlite"
    DB_NAME: str = "mediaflow"
    MONGO_URL: str = "mongodb://localhost:27017"
    MONGO_JOBS_COLLECTION: str = "jobs"
    SQLITE_PATH: Path = Path("data/mediaflow.db")

    # --- AWS (seed names; AWS_ACCESS_KEY_ID is accepted as an alias of AWS_ACCESS_KEY) -----------
    AWS_REGION: str = "us-east-1"
    AWS_ACCESS_KEY: str | None = None
    AWS_ACCESS_KEY_ID: str | None = None
    AWS_SECRET_ACCESS_KEY: SecretStr | None = None
    # Endpoint overrides for S3- and DynamoDB-compatible servers (MinIO, SeaweedFS, DynamoDB Local).
    AWS_ENDPOINT_URL: str | None = None
    S3_ENDPOINT_URL: str | None = None
    DYNAMODB_ENDPOINT_URL: str | None = None

    # --- Queue (seed names) ------------------------------------------------------------------------
    # "embedded": workers claim queued jobs straight from the job store (one machine, or several
    # workers sharing a store). "kafka": the API publishes job ids to KAFKA_TOPIC.
    # Unset: "kafka" with DB_BACKEND mongodb/dynamodb (the seed's stack), else "embedded" (see
    # `backend_choices`).
    QUEUE_BACKEND: Literal["embedded", "kafka"] | None = None
    KAFKA_BOOTSTRAP_SERVERS: str = "localhost:9092"
    KAFKA_TOPIC: str = "video-processing-jobs"
    KAFKA_CONSUMER_GROUP: str = "video-processors"
    # Partitions of KAFKA_TOPIC when MediaFlow creates it. A consumer group gives each partition to one
    # member, so this caps how many workers Kafka feeds; partitions are cheap, so size for the cluster.
    # An existing topic is never changed (see docs/deployment.md, "Worker scaling").
    KAFKA_TOPIC_PARTITIONS: int = Field(default=32, ge=1)
    KAFKA_SESSION_TIMEOUT_MS: int = Field(default=10_000, ge=1000)
    KAFKA_HEARTBEAT_INTERVAL_MS: int = Field(default=3_000, ge=100)
    KAFKA_DELIVERY_TIMEOUT_S: float = Field(default=10.0, gt=0)
    # librdkafka fetch.wait.max.ms of the workers' consumers. Kafka answers a fetch as soon as data
    # arrives, so there this only sets how often idle consumers ask (raise it to 500 on a big cluster);
    # brokers that hold every fetch for the full time (Tansu) add it to each job's wait.
    KAFKA_FETCH_WAIT_MAX_MS: int = Field(default=20, ge=1, le=5000)

    # --- Storage (seed names) ----------------------------------------------------------------------
    # "local": outputs, logs and uploads under LOCAL_STORAGE_DIR. "s3": under OUTPUT_BUCKET.
    # Unset: "s3" with DB_BACKEND mongodb/dynamodb (the seed's stack), else "local".
    STORAGE_BACKEND: Literal["local", "s3"] | None = None
    OUTPUT_BUCKET: str = "mediaflow-outputs"
    OUTPUT_PREFIX: str = "processed"
    LOCAL_STORAGE_DIR: Path = Path("data/storage")
    # Serve downloads as a redirect to a presigned S3 URL instead of streaming through the API.
    S3_PRESIGNED_DOWNLOADS: bool = False
    S3_PRESIGN_EXPIRES_S: int = Field(default=3600, ge=60)
    # Jobs that finished more than this many hours ago are removed with their output and log by the
    # API process (jobs/retention.py), and so are older uploads no queued or running job needs; 0 keeps
    # everything. RETENTION_SWEEP_INTERVAL_S: how often it looks.
    JOB_RETENTION_HOURS: float = Field(default=0, ge=0)
    RETENTION_SWEEP_INTERVAL_S: float = Field(default=600, gt=0)

    # --- Sources -----------------------------------------------------------------------------------
    # Local paths are accepted only below these directories (comma-separated), after resolving
    # symlinks and "..". Never an arbitrary path on the server.
    LOCAL_SOURCE_ROOTS: Annotated[list[Path], NoDecode] = [Path("media")]
    UPLOAD_MAX_BYTES: int = Field(default=2 * 1024**3, ge=1)
    # Where s3:// sources may be read from (media/s3_sources.py): comma-separated `bucket` or
    # `bucket/prefix` entries, `*` for any bucket the credentials reach. Unset: none when API_KEYS is
    # set (tenants send files through POST /upload), any bucket otherwise (single tenant). Uploads and
    # outputs in OUTPUT_BUCKET are never readable this way, whatever is listed.
    S3_SOURCE_BUCKETS: Annotated[list[str] | None, NoDecode] = None
    # Sources by http(s) URL (media/url_sources.py; .env.example and docs/sources.md say what each does).
    SOURCE_URL_ALLOW_PRIVATE: bool = False
    SOURCE_URL_MAX_BYTES: int | None = Field(default=None, ge=1)
    SOURCE_URL_TIMEOUT_S: float = Field(default=30, gt=0)
    # Where `destination` may deliver a job's files (storage/destinations.py); as S3_SOURCE_BUCKETS.
    S3_DESTINATION_BUCKETS: Annotated[list[str] | None, NoDecode] = None

    # Limits checked on the probed input before encoding (a header can claim anything), and again
    # while ffmpeg decodes (media/limits.py): frame size through -max_pixels, duration through -t.
    # Defaults fit a 2-core, 4 GB worker: DCI 4K (4096x2160) is the largest frame accepted.
    MAX_INPUT_DURATION_S: float = Field(default=4 * 3600, gt=0)
    MAX_INPUT_DIMENSION: int = Field(default=4096, gt=0)
    MAX_INPUT_PIXELS: int = Field(default=4096 * 2160, gt=0)
    MAX_INPUT_STREAMS: int = Field(default=16, gt=0)
    # Address-space cap of each ffmpeg/ffprobe (RLIMIT_AS), in MB; 0: none. A 4K compress at
    # -preset medium peaks at 1.3 GB RSS and needs 2 GB of address space on 2 cores (measured);
    # 3 GB leaves room for that and the worker on a 4 GB machine. Size it to RAM / WORKER_CONCURRENCY.
    FFMPEG_MAX_MEMORY_MB: int = Field(default=3072, ge=0)

    # Queued + processing jobs one API key may have at a time; past it POST /process and retries
    # answer 429 with Retry-After. Applies when API_KEYS is set (an open API has no keys to tell
    # apart); 0: no limit. Concurrent requests of one key can pass it by the number in flight.
    MAX_ACTIVE_JOBS_PER_KEY: int = Field(default=100, ge=0)

    # --- Worker ------------------------------------------------------------------------------------
    # Jobs one `python worker.py` process runs at a time (each slot is its own queue consumer).
    WORKER_CONCURRENCY: int = Field(default=1, ge=1)
    # Workers started inside the API process. None: 1 on the embedded default (SQLite + embedded
    # queue), so `uvicorn main:app` alone processes jobs; 0 otherwise (run `python worker.py`).
    API_WORKERS: int | None = Field(default=None, ge=0)
    # A worker holds a job for LEASE_SECONDS at a time and renews it every third of that; a job whose
    # lease runs out (the worker died) goes back to the queue, MAX_ATTEMPTS times at most.
    LEASE_SECONDS: float = Field(default=30.0, gt=0)
    MAX_ATTEMPTS: int = Field(default=3, ge=1)
    POLL_INTERVAL_S: float = Field(default=1.0, gt=0)
    # With Kafka, an idle worker also takes jobs that have waited this long in the store: their
    # partition's consumer is busy, the worker holds no partition (more workers than partitions), or the
    # publish was lost. Short, so every started worker gets work; the claim is conditional, so the
    # partition's consumer skips the id when it comes.
    QUEUED_SWEEP_AFTER_S: float = Field(default=2.0, gt=0)
    JOB_TIMEOUT_S: float = Field(default=3 * 3600, gt=0, description="longest a single run may take")
    STALL_TIMEOUT_S: float = Field(default=300, gt=0, description="fail when ffmpeg makes no progress this long")
    SHUTDOWN_GRACE_S: float = Field(default=30, ge=0, description="on SIGTERM, let a running job finish this long")
    STORAGE_RETRIES: int = Field(default=3, ge=0, description="retries of a failed storage transfer, with backoff")
    PROGRESS_WRITE_INTERVAL_S: float = Field(default=1.0, ge=0)
    WORK_DIR: Path | None = None  # temp files; default: the system temp dir
    FFMPEG_BINARY: str | None = None
    FFPROBE_BINARY: str | None = None
    FFMPEG_THREADS: int = Field(default=0, ge=0, description="0 = let ffmpeg decide")
    CHUNK_SECONDS: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description='"parallel" video outputs: about how long each chunk task is (at least one GOP)',
    )
    # "parallel": "auto" (the default) spreads a job over the workers only when it encodes at least this
    # much source and more than one worker slot is alive: below it, a task's overhead outweighs the gain.
    CHUNK_MIN_SOURCE_S: float = Field(default=120.0, ge=0, le=86_400)

    # --- Webhooks (mediaflow/webhooks/) ---------------------------------------------------------------
    # Every job's events (completed/failed/canceled; progress for jobs that asked) are POSTed here too,
    # besides the job's own callback_url. Operator configuration, so it may name an internal host: it is
    # not address-checked.
    WEBHOOK_URL: str | None = None
    # Signs every delivery the Standard Webhooks way (webhook-signature; plus the deprecated
    # MediaFlow-Signature). `whsec_<base64 key>`, or any other string (used as its UTF-8 bytes, i.e.
    # the key `whsec_` + base64(secret)). Unset: deliveries go out unsigned and a warning is logged.
    WEBHOOK_SECRET: SecretStr | None = None
    # A failed delivery is retried with exponential backoff (BASE, 2×BASE, 4×BASE, … at most 5 min
    # apart) for this long after the job finished (whichever process carries on); each attempt may
    # take WEBHOOK_TIMEOUT_S.
    WEBHOOK_RETRY_FOR_S: float = Field(default=3600, ge=0)
    WEBHOOK_TIMEOUT_S: float = Field(default=10, gt=0)
    WEBHOOK_BACKOFF_BASE_S: float = Field(default=1.0, gt=0)
    # Job callback_urls that resolve to loopback/private/link-local/... addresses are refused (SSRF);
    # true allows them (a trusted, internal deployment, or tests).
    WEBHOOK_ALLOW_PRIVATE: bool = False
    # On shutdown, deliveries still in flight get this long to finish; the rest are left in the job's
    # outbox (final events) for another process to resume, or abandoned (progress milestones).
    WEBHOOK_SHUTDOWN_GRACE_S: float = Field(default=5, ge=0)
    # Every API and worker process looks this often for final events whose delivery is due and that no
    # live process is handling (its process crashed or stopped): webhooks/outbox.py.
    WEBHOOK_SWEEP_INTERVAL_S: float = Field(default=5, gt=0)

    # --- Metrics (metrics.py) ------------------------------------------------------------------------
    # The API serves GET /metrics (Prometheus text format) on its own port, without an API key.
    # A standalone `python worker.py` serves its own metrics on WORKER_METRICS_PORT at METRICS_HOST
    # (unset: no metrics server); use 0.0.0.0 only on a private network, the endpoint is open.
    WORKER_METRICS_PORT: int | None = Field(default=None, ge=1, le=65535)
    METRICS_HOST: str = "127.0.0.1"
    # mediaflow_jobs{status} is counted in the store at scrape time, at most once per this many seconds
    # (counting is a query per status: on DynamoDB a read of the status index).
    METRICS_JOB_COUNTS_TTL_S: float = Field(default=2.0, ge=0)

    # --- API / logs --------------------------------------------------------------------------------
    # Comma-separated `name:key` entries (or bare keys). Empty: the API is open.
    API_KEYS: SecretStr = SecretStr("")
    # Largest request body the API reads (JSON bodies are a few hundred bytes); larger is a 413.
    # POST /upload has its own limit, UPLOAD_MAX_BYTES.
    MAX_REQUEST_BODY_BYTES: int = Field(default=1024 * 1024, ge=1024)
    # Slow clients (api/server.py, used by `mediaflow serve`): a connection must complete its request
    # headers within API_HEADER_TIMEOUT_S, and a request body may pause at most API_BODY_IDLE_TIMEOUT_S
    # between chunks (408). API_MAX_CONNECTIONS: open connections at most (default: the file limit
    # less a reserve); past it the one that has waited longest for its headers is closed.
    API_HEADER_TIMEOUT_S: float = Field(default=10.0, gt=0)
    API_BODY_IDLE_TIMEOUT_S: float = Field(default=30.0, gt=0)
    API_KEEPALIVE_TIMEOUT_S: float = Field(default=5.0, gt=0)
    API_MAX_CONNECTIONS: int | None = Field(default=None, ge=16)
    API_HOST: str = "127.0.0.1"
    API_PORT: int = 8000
    # Host names the API answers to (api/hosts.py, against DNS rebinding): comma-separated names,
    # `.example.com` for a domain and its subdomains, `*` for any. Unset: localhost, 127.0.0.1, ::1
    # and the address a request came in on. List your domain when clients use one.
    ALLOWED_HOSTS: Annotated[list[str] | None, NoDecode] = None
    # Other web origins (`https://app.example.com`) whose pages may POST/DELETE here from a browser;
    # the API's own origin (the dashboard) always may. Requests without an Origin header are not checked.
    ALLOWED_ORIGINS: Annotated[list[str], NoDecode] = []
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    LOG_FORMAT: Literal["console", "json"] = "console"
    # Lifetime of the signed links from GET /jobs/{id}/download-url (for players and plain links,
    # which cannot send an API key header).
    DOWNLOAD_URL_EXPIRES_S: int = Field(default=3600, ge=10, le=7 * 24 * 3600)
    # GET /jobs/{id}/events (Server-Sent Events) re-reads the job this often, sends a keep-alive comment
    # when idle this long, and ends a stream after SSE_MAX_STREAM_S (clients reconnect transparently).
    SSE_POLL_INTERVAL_S: float = Field(default=0.5, gt=0)
    SSE_KEEPALIVE_S: float = Field(default=15.0, gt=0)
    SSE_MAX_STREAM_S: float = Field(default=300.0, gt=0)

    @field_validator(
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "S3_ENDPOINT_URL",
        "DYNAMODB_ENDPOINT_URL",
        "WORK_DIR",
        "FFMPEG_BINARY",
        "FFPROBE_BINARY",
        "API_WORKERS",
        "WEBHOOK_URL",
        "WEBHOOK_SECRET",
        "WORKER_METRICS_PORT",
        "API_MAX_CONNECTIONS",
        "SOURCE_URL_MAX_BYTES",
        mode="before",
    )
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        # `AWS_ACCESS_KEY=` in a .env file means "not set", not "the empty key".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _choose_backends(self) -> Settings:
        """A seed user's .env names DB_BACKEND=mongodb|dynamodb, Kafka and S3 settings, but not our
        QUEUE_BACKEND/STORAGE_BACKEND: a document store then means the seed's whole stack."""
        distributed = self.DB_BACKEND in ("mongodb", "dynamodb")
        why = f"DB_BACKEND={self.DB_BACKEND}"
        choices = {}
        for name, seed, embedded in (("QUEUE_BACKEND", "kafka", "embedded"), ("STORAGE_BACKEND", "s3", "local")):
            if getattr(self, name) is not None:
                choices[name] = f"{getattr(self, name)} (set explicitly)"
                continue
            value = seed if distributed else embedded
            setattr(self, name, value)
            choices[name] = (
                f"{value} ({name} unset; {why} selects the seed's stack)"
                if distributed
                else f"{value} ({name} unset; the embedded default with {why})"
            )
        self._backend_choices = choices
        return self

    @property
    def backend_choices(self) -> dict[str, str]:
        """{"QUEUE_BACKEND": "kafka (QUEUE_BACKEND unset; DB_BACKEND=mongodb selects the seed's stack)", ...}"""
        return dict(self._backend_choices)

    @field_validator("API_KEYS")
    @classmethod
    def _check_api_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())  # fail at start-up, not at the first request
        return value

    @field_validator("WEBHOOK_URL")
    @classmethod
    def _check_webhook_url(cls, value: str | None) -> str | None:
        from mediaflow.ssrf import check_url_shape

        if value is not None:
            check_url_shape(value, name="WEBHOOK_URL", allow_credentials=True)  # fail at start-up
        return value

    @field_validator("WEBHOOK_SECRET")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            webhook_signing_key(value.get_secret_value())  # a malformed whsec_ key fails at start-up
        return value

    @field_validator("S3_SOURCE_BUCKETS", "S3_DESTINATION_BUCKETS", mode="before")
    @classmethod
    def _split_buckets(cls, value: object, info) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None  # `S3_SOURCE_BUCKETS=` in a .env file means "not set": the default
            if value.strip().lower() == "none":
                return []
            value = [entry.removeprefix("s3://").strip("/") for entry in comma_list(value)]
            value = [entry for entry in value if entry]
        for entry in value if isinstance(value, list) else ():
            if entry != "*" and not _SOURCE_BUCKET_ENTRY.fullmatch(entry):
                raise ValueError(f"{info.field_name} entry {entry!r} is not `*`, `bucket` or `bucket/prefix`")
        return value

    @field_validator("ALLOWED_HOSTS", "ALLOWED_ORIGINS", mode="before")
    @classmethod
    def _split_names(cls, value: object, info) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None if info.field_name == "ALLOWED_HOSTS" else []
            value = [entry.lower().rstrip("/") for entry in comma_list(value)]
        return value

    @field_validator("LOCAL_SOURCE_ROOTS", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(part.strip()) for part in value.split(",") if part.strip()]
        return value

    @cached_property
    def aws_access_key_id(self) -> str | None:
        return self.AWS_ACCESS_KEY or self.AWS_ACCESS_KEY_ID

    @property
    def aws_secret(self) -> str | None:
        return self.AWS_SECRET_ACCESS_KEY.get_secret_value() if self.AWS_SECRET_ACCESS_KEY else None

    @property
    def s3_endpoint(self) -> str | None:
        return self.S3_ENDPOINT_URL or self.AWS_ENDPOINT_URL

    @property
    def dynamodb_endpoint(self) -> str | None:
        return self.DYNAMODB_ENDPOINT_URL or self.AWS_ENDPOINT_URL

    @cached_property
    def api_keys(self) -> list[ApiKey]:
        return parse_api_keys(self.API_KEYS.get_secret_value())

    @property
    def s3_source_buckets(self) -> list[str]:
        """S3_SOURCE_BUCKETS, or its default: nothing with API keys, any bucket without."""
        return self.S3_SOURCE_BUCKETS if self.S3_SOURCE_BUCKETS is not None else [] if self.api_keys else ["*"]

    @property
    def s3_destination_buckets(self) -> list[str]:
        """S3_DESTINATION_BUCKETS, or its default: nothing with API keys, any bucket without."""
        value = self.S3_DESTINATION_BUCKETS
        return value if value is not None else [] if self.api_keys else ["*"]

    @property
    def source_roots(self) -> list[Path]:
        """Allowed local source directories, absolute and with symlinks resolved."""
        return list(_resolved_roots(tuple(self.LOCAL_SOURCE_ROOTS)))
