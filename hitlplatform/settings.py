"""Settings for the HITL review platform, read from environment variables.

No environment set gives the embedded default: a SQLite file and RQ queues that
run jobs inline. ``DATABASE_URL`` switches to PostgreSQL, ``REDIS_URL`` to real
RQ queues (workers: ``python manage.py rqworker judge exports webhooks default``,
which always run the scheduler: ``hitlplatform.workers``).
"""

import os
import secrets
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from botocore.config import Config
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


DEBUG = env_bool("DEBUG", default=False)
# Production: SECRET_KEY required, DEBUG refused, HTTPS-only defaults below.
HITL_PRODUCTION = env_bool("HITL_PRODUCTION", default=False)
if HITL_PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when HITL_PRODUCTION=1.")


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if HITL_PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when HITL_PRODUCTION=1.")
    # Development: a random key kept in a git-ignored file so sessions survive restarts.
    path = BASE_DIR / ".dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_rq",
    "axes",
    "csp",
    "reviews",
    "adjudication",
    "datasets",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics: before host validation and the https redirect.
    "hitlplatform.operations.OperationsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise so static files carry the policy too.
    "csp.middleware.CSPMiddleware",
    # Static files (admin, workspace JS, Swagger UI) served by the app itself,
    # under runserver and gunicorn alike; no CDN, no separate web server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "reviews.access.RolesPerRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last: turns a login refused by the axes backend into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hitlplatform.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "hitlplatform.wsgi.application"

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("TEST", {})["NAME"] = env_str(
            "TEST_DATABASE_NAME", "test_" + (DATABASES["default"]["NAME"] or "hitl")
        )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
# `make serve` fills STATIC_ROOT with collectstatic; runserver, tests and the
# bench scripts serve straight from the finders, so an absent STATIC_ROOT is normal.
warnings.filterwarnings("ignore", message="No directory at: .*staticfiles")
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
LOGIN_URL = "admin:login"
# The axes backend first: it refuses a locked-out username+address before any
# password is checked (hitlplatform/login_lockout.py, settings below).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Change reasons carry reviewer notes and routing explanations: no 100-char cap.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
# History is an audit trail: no revert from the admin (see reviews.access.admin).
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- Redis and RQ ------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
# Without REDIS_URL jobs run inline, in the web process, right after the
# transaction that enqueued them commits (fakeredis holds the job records).
RQ_INLINE = not REDIS_URL
RQ_QUEUE_NAMES = ["default", "judge", "exports", "webhooks"]
RQ_QUEUES = {
    name: (
        # A Redis that is down answers "connection refused" at once; one that is
        # unreachable must not hang a web request for minutes either.
        {
            "URL": REDIS_URL,
            "DEFAULT_TIMEOUT": 600,
            "REDIS_CLIENT_KWARGS": {"socket_connect_timeout": 2},
        }
        if REDIS_URL
        else {"HOST": "127.0.0.1", "PORT": 6379, "DB": 0, "ASYNC": False}
    )
    for name in RQ_QUEUE_NAMES
}
# Every `manage.py rqworker` runs hitlplatform.workers.Worker: it always runs RQ's
# scheduler (no --with-scheduler needed) and keeps it running; see that module.
RQ = {"COMMIT_MODE": "auto", "WORKER_CLASS": "hitlplatform.workers.Worker"}
# Read by workers. Seconds between a worker's checks that its scheduler runs (and,
# when another worker holds the scheduler lock, whether that lock was released).
HITL_SCHEDULER_CHECK_SECONDS = env_int("HITL_SCHEDULER_CHECK_SECONDS", 5)
# Seconds the scheduler lock lasts without a heartbeat (RQ's own is 61 s): how long a
# killed scheduler keeps the others from taking over. Refreshed every second.
HITL_SCHEDULER_LOCK_SECONDS = env_int("HITL_SCHEDULER_LOCK_SECONDS", 15)
# Seconds between a busy worker's heartbeats; a job whose worker misses three of them
# counts as abandoned (its items are picked up by the sweeps).
HITL_WORKER_HEARTBEAT_SECONDS = env_int("HITL_WORKER_HEARTBEAT_SECONDS", 10)

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "hitl"),
            # Fail fast when Redis is unreachable: the API degrades instead of hanging.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Login throttling (django-axes) -------------------------------------------
# Failed logins are counted per username and client address together: one person
# behind an office's shared address cannot lock everybody out, and nobody can lock
# an administrator out from elsewhere. Each address gets HITL_LOGIN_FAILURE_LIMIT
# guesses per account, then that pair is refused, the right password included,
# until HITL_LOGIN_COOLOFF_MINUTES after its last attempt (attempts while locked
# restart the wait). Only authenticate() calls carrying a request count: the
# admin login form. API keys and DRF session auth never call authenticate(); the
# API key throttle is REST_FRAMEWORK's below.
AXES_ENABLED = env_bool("HITL_LOGIN_THROTTLE", default=True)
AXES_FAILURE_LIMIT = env_int("HITL_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("HITL_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# A successful login clears that username+address pair's earlier failures.
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "hitlplatform.login_lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "hitlplatform.login_lockout.client_ip_address"
# The client address: REMOTE_ADDR unless HITL_CLIENT_IP_HEADER names a header the
# reverse proxy sets (X-Forwarded-For, X-Real-IP). Opt in only behind a proxy that
# overwrites or appends to it: anyone can send that header to the app directly.
# With HITL_TRUSTED_PROXY_COUNT proxies in front, the address is the entry that
# many places from the right of a comma-separated list.
HITL_CLIENT_IP_HEADER = env_str("HITL_CLIENT_IP_HEADER")
HITL_TRUSTED_PROXY_COUNT = env_int("HITL_TRUSTED_PROXY_COUNT", 1)

# --- HTTPS, cookies and proxies (manage.py check --deploy) ---------------------
# Production defaults to HTTPS only; development keeps plain http for `make run`.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=HITL_PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=HITL_PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=HITL_PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HITL_PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HITL_PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=HITL_PRODUCTION)
# Behind a TLS-terminating proxy: the header it sets to "https" (X-Forwarded-Proto).
# Only when the proxy always sets or strips it; otherwise a client could claim https.
proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER").strip()
if proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + proxy_ssl_header.upper().replace("-", "_"),
        "https",
    )

# --- Content-Security-Policy (django-csp) --------------------------------------
# No inline script or style in our pages: their code lives in static/ and gets its
# data from data-* attributes and json_script blocks (data, never run). README,
# "Content-Security-Policy", lists what third-party pages still have blocked.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF, "data:"],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}

# --- REST API ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "reviews.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["reviews.api.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env_str("HITL_API_THROTTLE", "600/min")},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hitlplatform.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["reviews.api.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "LIST_SERIALIZER_ERRORS_AS_DICT": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HITL Review Platform API",
    "DESCRIPTION": (
        "Submit LLM outputs for checks, judging and expert review; read reviewed results; "
        "build fine-tuning datasets.\n\n"
        "Applications authenticate with a project's API key (`Authorization: Api-Key <key>` "
        "or `X-API-Key: <key>`); a key acts for its one project. Browser callers use their "
        "admin session cookie and send the CSRF token on writes. What a person may do "
        "follows their role in each project (reviewer, senior, admin). Errors answer with "
        '`{"detail": ..., "code": ...}` or, for invalid input, with messages per field.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request and response shapes differ (read-only fields, non-blank input strings).
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ItemStatusEnum": "reviews.models.items.ItemStatus",
        "ExportStatusEnum": "datasets.models.ExportStatus",
        "ItemKindEnum": "reviews.models.items.ItemKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "reviews.api.schema.optional_query_values_may_be_empty",
    ],
    # Swagger UI assets are served from this server, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Seconds a web process reuses an API key it looked up (with its project, judge
# configuration and check rules): a key revoked, or a project changed, takes
# effect in the other processes within this; 0 looks the key up on every request.
HITL_API_KEY_CACHE_SECONDS = env_int("HITL_API_KEY_CACHE_SECONDS", 5)
# Seconds a client is told to wait (Retry-After) when the database is unreachable.
HITL_RETRY_AFTER_SECONDS = env_int("HITL_RETRY_AFTER_SECONDS", 5)

# Request bodies above this many bytes are refused with HTTP 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("HITL_MAX_REQUEST_BYTES", 20 * 1024 * 1024)
# Per-field limits on one submitted item (characters).
HITL_MAX_TEXT_CHARS = env_int("HITL_MAX_TEXT_CHARS", 200_000)
HITL_MAX_JSON_DEPTH = env_int("HITL_MAX_JSON_DEPTH", 64)  # levels of lists/objects in a field
HITL_MAX_BATCH = env_int("HITL_MAX_BATCH", 1000)
# OTLP traces grouped per trace: spans wait this long for their trace's root span.
HITL_OTLP_TRACE_HOLD_HOURS = env_int("HITL_OTLP_TRACE_HOLD_HOURS", 24)
HITL_DEFAULT_LEASE_MINUTES = env_int("HITL_LEASE_MINUTES", 30)

# --- LLM judge (reviews/judge/) ----------------------------------------------
# Fernet keys (comma-separated, first encrypts) for stored secrets such as judge
# API keys; unset: a key derived from SECRET_KEY.
HITL_FIELD_ENCRYPTION_KEY = env_list("HITL_FIELD_ENCRYPTION_KEY", [])
# Items per judge job at most (a batch is split in even chunks). Each job pays a
# work-horse fork, a database connection, an HTTP session and a slow first wave
# of calls (~0.3 s); with 2 workers, 1,000 items took 4.1 s in chunks of 100,
# 2.7-3.2 s in chunks of 250 and 2.6-2.8 s in chunks of 500 (bench/judge.py).
HITL_JUDGE_CHUNK_SIZE = env_int("HITL_JUDGE_CHUNK_SIZE", 500)
HITL_JUDGE_RETRY_BACKOFF = env_int("HITL_JUDGE_RETRY_BACKOFF", 10)  # s; doubles per retry
# `reconcile` (by hand) re-enqueues items pending longer than this with no live job.
HITL_JUDGE_STUCK_MINUTES = env_int("HITL_JUDGE_STUCK_MINUTES", 15)
# The cron sweep (every HITL_RECONCILE_INTERVAL s) re-enqueues items pending longer
# than HITL_JUDGE_SWEEP_GRACE_SECONDS that no queued, scheduled or running job holds.
HITL_RECONCILE_INTERVAL = env_int("HITL_RECONCILE_INTERVAL", 60)
HITL_JUDGE_SWEEP_GRACE_SECONDS = env_int("HITL_JUDGE_SWEEP_GRACE_SECONDS", 30)

# --- Webhooks (reviews/webhooks/) --------------------------------------------
# The address rule is reviews/netpolicy.py, applied when a project is saved and
# before each delivery. Private, loopback, link-local, CGNAT and other non-public
# receivers are refused unless this is on; on, any address and any port pass (a
# trusted network: development, tests, a platform deployed beside its receivers).
HITL_WEBHOOK_ALLOW_PRIVATE = env_bool("HITL_WEBHOOK_ALLOW_PRIVATE", default=False)
# Ports a public receiver may listen on (comma list); ignored when ALLOW_PRIVATE is on.
HITL_WEBHOOK_ALLOWED_PORTS = [
    int(port) for port in env_list("HITL_WEBHOOK_ALLOWED_PORTS", ["80", "443"])
]
HITL_WEBHOOK_TIMEOUT = env_int("HITL_WEBHOOK_TIMEOUT", 10)  # seconds per attempt
HITL_WEBHOOK_MAX_ATTEMPTS = env_int("HITL_WEBHOOK_MAX_ATTEMPTS", 12)
# Retry n waits BACKOFF * 2**(n-1) seconds, capped at BACKOFF_MAX.
HITL_WEBHOOK_BACKOFF_SECONDS = env_int("HITL_WEBHOOK_BACKOFF_SECONDS", 15)
HITL_WEBHOOK_BACKOFF_MAX_SECONDS = env_int("HITL_WEBHOOK_BACKOFF_MAX_SECONDS", 3600)
# The sweep re-enqueues pending deliveries this long past due (their job was lost).
HITL_WEBHOOK_SWEEP_GRACE_SECONDS = env_int("HITL_WEBHOOK_SWEEP_GRACE_SECONDS", 60)
HITL_WEBHOOK_SWEEP_INTERVAL = env_int("HITL_WEBHOOK_SWEEP_INTERVAL", 60)  # s between sweeps

# --- Item search (reviews/search/) --------------------------------------------------
# Documents are built off the ingest path by a job, enqueued after each write that
# queues items (off: the sweep alone indexes them, every HITL_SEARCH_SWEEP_INTERVAL s).
HITL_SEARCH_INDEX_ON_COMMIT = env_bool("HITL_SEARCH_INDEX_ON_COMMIT", True)
HITL_SEARCH_SWEEP_INTERVAL = env_int("HITL_SEARCH_SWEEP_INTERVAL", 60)

# --- Dataset exports (datasets/) ------------------------------------------------
# Local storage: the export files. Object storage: this machine's scratch space.
HITL_EXPORT_DIR = Path(env_str("HITL_EXPORT_DIR", str(MEDIA_ROOT / "exports")))
HITL_EXPORT_CHUNK_SIZE = env_int("HITL_EXPORT_CHUNK_SIZE", 5000)  # rows per database fetch
HITL_EXPORT_JOB_TIMEOUT = env_int("HITL_EXPORT_JOB_TIMEOUT", 6 * 3600)  # seconds
# exports_sweep looks at exports queued longer than this (minutes).
HITL_EXPORT_STUCK_MINUTES = env_int("HITL_EXPORT_STUCK_MINUTES", 15)
# A running build beats every HEARTBEAT_SECONDS; the sweep fails one silent for TIMEOUT.
HITL_EXPORT_HEARTBEAT_SECONDS = env_int("HITL_EXPORT_HEARTBEAT_SECONDS", 10)
HITL_EXPORT_HEARTBEAT_TIMEOUT = env_int("HITL_EXPORT_HEARTBEAT_TIMEOUT", 60)
# exports_sweep deletes exports finished longer ago than this (days; 0 keeps them).
HITL_EXPORT_RETENTION_DAYS = env_int("HITL_EXPORT_RETENTION_DAYS", 0)
HITL_EXPORT_PART_MB = env_int("HITL_EXPORT_PART_MB", 5)  # S3 multipart part size, >= 5
# Where export files live: "local" (HITL_EXPORT_DIR) or "s3" (the HITL_S3_* settings).
HITL_EXPORT_STORAGE = env_str("HITL_EXPORT_STORAGE", "local")


def _file_storage(*, kind_setting: str, kind: str, local: dict, prefix: str) -> dict:
    """A file storage alias: a local directory, or S3-compatible object storage.

    Exports and imports share the ``HITL_S3_*`` connection (one bucket, one
    prefix each), so a deployment on several machines configures S3 once.
    """
    kind = kind.strip().lower()
    if kind == "local":
        return local
    if kind != "s3":
        raise ImproperlyConfigured(f"{kind_setting} must be local or s3, got {kind!r}")
    bucket = env_str("HITL_S3_BUCKET")
    if not bucket:
        raise ImproperlyConfigured(f"HITL_S3_BUCKET must be set when {kind_setting}=s3.")
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": env_str("HITL_S3_ENDPOINT_URL") or None,
            "region_name": env_str("HITL_S3_REGION") or None,
            # Unset: boto3's own chain (AWS_* variables, instance or pod role).
            "access_key": env_str("HITL_S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("HITL_S3_SECRET_ACCESS_KEY") or None,
            "location": prefix.strip("/"),
            "file_overwrite": True,
            "querystring_expire": env_int("HITL_S3_PRESIGNED_EXPIRY", 300),
            "client_config": Config(
                signature_version="s3v4",
                s3={"addressing_style": env_str("HITL_S3_ADDRESSING_STYLE", "path")},
                # S3-compatible servers differ on the newer default checksums;
                # the manifest's sha256 is the integrity check.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"mode": "standard", "max_attempts": 5},
            ),
        },
    }


# Downloads answer 302 to a presigned URL of the object, valid for EXPIRY seconds.
HITL_S3_PRESIGNED_DOWNLOADS = env_bool("HITL_S3_PRESIGNED_DOWNLOADS", default=False)
HITL_S3_PRESIGNED_EXPIRY = env_int("HITL_S3_PRESIGNED_EXPIRY", 300)

# --- Health and metrics (hitlplatform/health.py, hitlplatform/metrics/) --------
# Seconds /readyz waits for each dependency (database, Redis, export storage).
HITL_HEALTH_TIMEOUT = env_int("HITL_HEALTH_TIMEOUT", 2)
# Bearer token Prometheus sends to /metrics; empty turns the endpoint off (404).
# Multiprocess mode is the PROMETHEUS_MULTIPROC_DIR environment variable (README, Metrics).
HITL_METRICS_TOKEN = env_str("HITL_METRICS_TOKEN")

# --- Item imports (reviews/imports/) ---------------------------------------------
# Uploaded files wait on the "imports" storage until a worker has ingested them;
# every web process and worker must reach it: a shared directory, or the S3
# bucket of the exports under its own prefix (HITL_IMPORT_STORAGE=s3).
HITL_IMPORT_DIR = Path(env_str("HITL_IMPORT_DIR", str(MEDIA_ROOT / "imports")))
HITL_IMPORT_MAX_BYTES = env_int("HITL_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
HITL_IMPORT_MAX_ROWS = env_int("HITL_IMPORT_MAX_ROWS", 200_000)
HITL_IMPORT_CHUNK_ROWS = env_int("HITL_IMPORT_CHUNK_ROWS", HITL_MAX_BATCH)  # rows per ingest call
HITL_IMPORT_MAX_ERRORS = env_int("HITL_IMPORT_MAX_ERRORS", 10_000)  # error rows kept per import
HITL_IMPORT_JOB_TIMEOUT = env_int("HITL_IMPORT_JOB_TIMEOUT", 3 * 3600)  # seconds
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "exports": _file_storage(
        kind_setting="HITL_EXPORT_STORAGE",
        kind=HITL_EXPORT_STORAGE,
        local={"BACKEND": "datasets.storage.ExportFileSystemStorage"},
        prefix=env_str("HITL_S3_PREFIX", "exports"),
    ),
    "imports": _file_storage(
        kind_setting="HITL_IMPORT_STORAGE",
        kind=env_str("HITL_IMPORT_STORAGE", HITL_EXPORT_STORAGE),
        local={
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(HITL_IMPORT_DIR)},
        },
        prefix=env_str("HITL_S3_IMPORT_PREFIX", "imports"),
    ),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The judge SDKs' HTTP clients log every request at INFO: thousands a second.
        # Current openai / anthropic releases use httpx2 (logger "httpx2"), older
        # ones the pyproject still allows use httpx.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
    },
}
