"""Handoff settings: one file, every production difference is an environment variable.

The embedded default (no servers) is SQLite in WAL mode plus Celery's filesystem transport,
both under ``var/``. Production and the test suite set ``DATABASE_URL`` (PostgreSQL) and
``CELERY_BROKER_URL`` (Redis or RabbitMQ).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("HANDOFF_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]"]),
    CSRF_TRUSTED_ORIGINS=(list, []),
    SECURE_COOKIES=(bool, False),
    SECURE_SSL_REDIRECT=(bool, False),
    SECURE_HSTS_SECONDS=(int, 0),
)

DEBUG = env("DEBUG")
# The demo: the embedded default (no DATABASE_URL), or HANDOFF_DEMO=true (a throwaway install on
# PostgreSQL, the test suite). Anywhere else a missing key is an error at start-up: a key in the
# source would let anyone forge sessions and re-sign the audit trail's checkpoints.
DEMO = env.bool("HANDOFF_DEMO", default=os.environ.get("DATABASE_URL", "sqlite").startswith("sqlite"))
DEMO_SECRET_KEY = "handoff-embedded-demo-key-change-me-in-production-0123456789"
_HOW_TO_SET = (
    "{name} is not set. Outside the demo Handoff needs its own {what}: generate one with\n"
    "    python -c 'import secrets; print(secrets.token_urlsafe(50))'\n"
    "and set it in the environment of the web, worker and beat processes (export {name}=...), "
    "or set HANDOFF_DEMO=true for a throwaway demo."
)
SECRET_KEY = env.str("SECRET_KEY", default="" if not DEMO else DEMO_SECRET_KEY)
if not SECRET_KEY:
    raise ImproperlyConfigured(_HOW_TO_SET.format(name="SECRET_KEY", what="secret key"))
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "guardian",
    "axes",  # login throttling
    "journeys",
    "review",
    "console",
    "ninja",  # the JSON API (/api/v1/): schema and docs page
    "api",
]

# --- the demo bank --------------------------------------------------------------------------
# The demo (DEMO above: the embedded default, or HANDOFF_DEMO=true as make run and make test set)
# also installs the demo app: simulated core bank, scripted agent, customer simulator, seed_demo.
HANDOFF_DEMO = DEMO
if HANDOFF_DEMO:
    INSTALLED_APPS.append("demo")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A view that loses the database answers 503 with a plain page (console/unavailable.py).
    "console.unavailable.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # One layer masks sensitive customer values in every page, partial and JSON answer.
    "review.audit.masking.MaskingMiddleware",
    "console.timezones.OperatorTimeZoneMiddleware",  # times in the operator's own zone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "review.audit.middleware.AuditWriteFailureMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the lockout page
    "api.middleware.ApiCallAudit",  # every authenticated API call goes to the audit trail
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out logins before any check
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

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
                "django.template.context_processors.csp",
                "console.context_processors.navigation",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'handoff.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server read while the worker writes; IMMEDIATE takes the write lock at
    # BEGIN so two processes never deadlock upgrading a read lock (SQLite has no row locks).
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
    # Prepared statements: with server-side binding, a statement run five times on a connection
    # is prepared there (psycopg's ``prepare_threshold``) and PostgreSQL stops parsing and
    # planning it on every run, which is about a third of its CPU in an agent's turn
    # (docs/performance.md, "sixth round"). Off (``DATABASE_PREPARED_STATEMENTS=false``) behind a
    # pooler that cannot keep prepared statements.
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
# Production runs the application as a role that may only SELECT and INSERT on the audit tables
# (``manage.py database_roles``) and migrations as the tables' owner: ``manage.py migrate`` uses
# this connection when it is set.
if env.str("MIGRATION_DATABASE_URL", default=""):
    DATABASES["owner"] = env.db_url("MIGRATION_DATABASE_URL")
    DATABASES["owner"].setdefault("CONN_MAX_AGE", 0)
    # Only migrations (and archiving) use the owner connection; the test suite never clones it.
    DATABASES["owner"]["TEST"] = {"MIRROR": "default"}
# The Celery worker keeps its database connection across tasks for this many seconds (checked
# before each task, so a connection the server dropped is replaced, not used); 0 opens one per
# task. The web process keeps CONN_MAX_AGE.
WORKER_CONN_MAX_AGE = env.int("WORKER_CONN_MAX_AGE", default=600)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth -----------------------------------------------------------------------------------
# Argon2id first (console/hashers.py): a login verifies in well under half a second of server
# time. The others stay so older hashes still verify; Django rewrites each one as Argon2id at that
# user's next login.
PASSWORD_HASHERS = [
    "console.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
ANONYMOUS_USER_NAME = None  # guardian: anonymous users never hold object permissions
GUARDIAN_RAISE_403 = False

# --- security -------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env("SECURE_COOKIES")
CSRF_COOKIE_SECURE = env("SECURE_COOKIES")
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT")
SECURE_HSTS_SECONDS = env("SECURE_HSTS_SECONDS")
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many of our own proxies append to X-Forwarded-For; 0 = trust only REMOTE_ADDR (a client can
# write any X-Forwarded-For it likes). See review/audit/request_meta.py.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if env.bool("BEHIND_TLS_PROXY", default=False) else 0)
# Login throttling (django-axes): a username from one address is locked after AXES_FAILURE_LIMIT
# failures for AXES_COOLOFF_MINUTES; failures and lockouts land in the audit trail.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15.0) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "review.audit.request_meta.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Signs the audit trail's checkpoints; keep it out of the database. Required outside the demo (in
# the demo it is derived from SECRET_KEY).
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
if not AUDIT_SIGNING_KEY and not DEMO:
    raise ImproperlyConfigured(_HOW_TO_SET.format(name="AUDIT_SIGNING_KEY", what="audit signing key"))
# Every new signed checkpoint is written outside the database (review/audit/sink.py): an
# append-only file in this folder, plus any other sinks listed ("syslog", or a dotted class path).
AUDIT_CHECKPOINT_DIR = env.str("AUDIT_CHECKPOINT_DIR", default=str(VAR_DIR / "audit-checkpoints"))
AUDIT_CHECKPOINT_SINKS = env.list("AUDIT_CHECKPOINT_SINKS", default=["file"])
AUDIT_CHECKPOINT_SYSLOG_ADDRESS = env.str("AUDIT_CHECKPOINT_SYSLOG_ADDRESS", default="/dev/log")
# Records older than this many days are archived to JSON Lines files in AUDIT_ARCHIVE_DIR (12
# months online by default), with a signed "archived up to" checkpoint.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
AUDIT_ARCHIVE_DIR = env.str("AUDIT_ARCHIVE_DIR", default=str(VAR_DIR / "audit-archive"))
# verify_audit walks the chains of a trail this large in this many worker processes at once on
# PostgreSQL (0: one per CPU); a smaller trail, SQLite or a caller inside a transaction walks them
# in one process (docs/audit.md, "Verification").
AUDIT_VERIFY_PROCESSES = env.int("AUDIT_VERIFY_PROCESSES", default=0)
AUDIT_VERIFY_PARALLEL_FROM = env.int("AUDIT_VERIFY_PARALLEL_FROM", default=20_000)
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

# --- i18n / static --------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("STATIC_MANIFEST", default=False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="handoff")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The transport ignores the host; naming one stops kombu warning "No hostname was supplied".
    # Celery reads the CELERY_BROKER_URL variable before this setting, so both are set.
    CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"] = "filesystem://localhost//"
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # An unacknowledged message comes back after this many seconds; the sweeper covers the
    # journey long before that, so this only bounds how long a lost message lingers.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("REDIS_VISIBILITY_TIMEOUT", default=600)}
# Task modules that are not an app's tasks.py (autodiscovery finds those).
CELERY_IMPORTS = ["review.audit.tasks", "console.metrics.tasks", "api.tasks"]
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "sweep-due-journeys": {
        "task": "journeys.tasks.sweep_due_journeys",
        "schedule": env.float("HANDOFF_SWEEP_SECONDS", default=5.0),
    },
    "audit-checkpoint": {
        "task": "review.audit.tasks.audit_checkpoint",
        "schedule": env.float("AUDIT_CHECKPOINT_SECONDS", default=60.0),
    },
    "audit-verify-daily": {
        "task": "review.audit.tasks.audit_verify_daily",
        "schedule": env.float("AUDIT_VERIFY_SECONDS", default=24 * 3600.0),
    },
    "audit-archive-daily": {
        "task": "review.audit.tasks.audit_archive_daily",
        "schedule": env.float("AUDIT_ARCHIVE_SECONDS", default=24 * 3600.0),
    },
    "expire-pending-approvals": {
        "task": "review.tasks.expire_pending_approvals",
        "schedule": env.float("HANDOFF_EXPIRY_SECONDS", default=15.0),
    },
    "expire-governance-changes": {
        "task": "review.tasks.expire_governance_changes",
        "schedule": env.float("HANDOFF_GOVERNANCE_EXPIRY_SECONDS", default=60.0),
    },
    "send-due-webhooks": {
        "task": "api.tasks.send_due_webhooks",
        "schedule": env.float("WEBHOOK_SWEEP_SECONDS", default=5.0),
    },
    "refresh-metrics": {
        "task": "console.metrics.tasks.refresh_metrics",
        "schedule": env.float("HANDOFF_METRICS_SECONDS", default=30.0),
    },
}
# Reviewer figures: approvals of at least this amount decided faster than this are flagged.
METRICS_HIGH_VALUE_AMOUNT = env.float("HANDOFF_HIGH_VALUE_AMOUNT", default=500.0)
METRICS_QUICK_DECISION_SECONDS = env.float("HANDOFF_QUICK_DECISION_SECONDS", default=10.0)

# --- Handoff runtime ------------------------------------------------------------------------
HANDOFF = {
    # The policy seam: a dotted path to ``callable(proposal) -> journeys.policy.Decision``.
    "POLICY_ENGINE": env.str("HANDOFF_POLICY_ENGINE", default="review.policy.evaluate"),
    # Its side effects: ``callable(proposal, decision, *, outcome)``, applied by the lifecycle
    # transition that reached the outcome (count against limits, open approval requests, sample).
    "POLICY_EFFECTS": env.str("HANDOFF_POLICY_EFFECTS", default="review.policy.apply_decision"),
    # The core-systems adapter a real bank replaces.
    # Without the demo there is no default: production names its own adapter.
    "CORE_BANK": env.str("HANDOFF_CORE_BANK", default="demo.corebank.SimulatedCoreBank" if HANDOFF_DEMO else ""),
    # A turn that has not finished within this many seconds is presumed dead (worker killed).
    "STEP_LEASE_SECONDS": env.int("HANDOFF_STEP_LEASE_SECONDS", default=60),
    # A worker runs a journey's next turns itself, without the broker's hop, while the task that
    # ran its first turn has run less than this (0: every turn goes through the broker).
    "CONTINUE_SECONDS": env.float("HANDOFF_CONTINUE_SECONDS", default=0.25),
    # A turn started this many times without finishing is quarantined to a person.
    "QUARANTINE_AFTER_STARTS": env.int("HANDOFF_QUARANTINE_AFTER_STARTS", default=3),
    # Transient failures retry with exponential back-off, then fall back to a person.
    "MAX_STEP_ATTEMPTS": env.int("HANDOFF_MAX_STEP_ATTEMPTS", default=4),
    "RETRY_BASE_SECONDS": env.float("HANDOFF_RETRY_BASE_SECONDS", default=2.0),
    # A journey that takes more agent turns than this is handed to a person (runaway guard).
    "MAX_TURNS": env.int("HANDOFF_MAX_TURNS", default=60),
    # The sweeper re-enqueues a due turn only after it has waited this long in the queue.
    "SWEEP_GRACE_SECONDS": env.float("HANDOFF_SWEEP_GRACE_SECONDS", default=10.0),
    # A turn the sweeper re-sent is re-sent again after as long as it already waited, at most this.
    "SWEEP_BACKOFF_MAX_SECONDS": env.float("HANDOFF_SWEEP_BACKOFF_MAX_SECONDS", default=300.0),
    # How long the agent waits for a customer reply before the journey is abandoned.
    "CUSTOMER_TIMEOUT_SECONDS": env.int("HANDOFF_CUSTOMER_TIMEOUT_SECONDS", default=24 * 3600),
    # Share (0 to 1) of auto-approved, non-read actions sampled for review after the fact.
    "REVIEW_SAMPLE_SHARE": env.float("HANDOFF_REVIEW_SAMPLE_SHARE", default=0.1),
    # Approval timeout of a pending action no scope gave a timeout to (e.g. a cumulative limit).
    "DEFAULT_APPROVAL_TIMEOUT_MINUTES": env.int("HANDOFF_DEFAULT_APPROVAL_TIMEOUT_MINUTES", default=60),
    # How long a reviewer's claim on a pending approval holds before others may take it.
    "REVIEW_CLAIM_MINUTES": env.int("HANDOFF_REVIEW_CLAIM_MINUTES", default=10),
    # How long a governance change waits for a second admin before it expires.
    "GOVERNANCE_CHANGE_HOURS": env.float("HANDOFF_GOVERNANCE_CHANGE_HOURS", default=72.0),
    # How many recent real proposals the scope editor's preview replays.
    "SCOPE_PREVIEW_PROPOSALS": env.int("HANDOFF_SCOPE_PREVIEW_PROPOSALS", default=50),
}
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="demo")

# LOG_FORMAT=json: one JSON object per line, with one line per agent turn, decision and HTTP
# request (journeys/observability.py). OTEL_TRACES_EXPORTER=otlp|console turns traces on.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain").lower()
if LOG_FORMAT == "json":
    MIDDLEWARE.insert(0, "console.request_log.RequestLogMiddleware")
# The API (/api/v1/). Rate limits count in the cache: set CACHE_URL (e.g. redis://…/2) when
# several web processes serve the API, so they share one count per token.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
API_RATE_PER_MINUTE = env.int("API_RATE_PER_MINUTE", default=120)
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
WEBHOOK_ROTATION_GRACE_HOURS = env.float("WEBHOOK_ROTATION_GRACE_HOURS", default=24.0)
# The llm agent: any OpenAI-compatible chat-completions endpoint (an agent's config overrides).
LLM_BASE_URL = env.str("LLM_BASE_URL", default="")
LLM_MODEL = env.str("LLM_MODEL", default="gpt-4o-mini")
LLM_API_KEY = env.str("LLM_API_KEY", default="")
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=20.0)
LLM_JOURNEY_SHARE = env.float("LLM_JOURNEY_SHARE", default=0.3)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "journeys.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "plain"}
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# The covering index on journeys is PostgreSQL-only; SQLite (the embedded demo) ignores the extra columns.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
