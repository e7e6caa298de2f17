"""Django settings for nurture, read from environment variables (see README.md, "Configuration").

Grouped by concern. Values go through config.env getters so a bad one becomes a system-check
error naming the variable instead of a traceback.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF

from config.env import (
    env_bool,
    env_choice,
    env_database,
    env_float,
    env_header,
    env_int,
    env_list,
    env_rate,
    env_str,
    env_url,
    env_url_path,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("NURTURE_VAR_DIR", str(BASE_DIR / "var")))

# --- core -------------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
# Without DJANGO_SECRET_KEY a development key is used; with DEBUG off start-up refuses it, and any
# key that is short or appears in this repository (nurture.E030, docs/security.md).
INSECURE_DEV_SECRET_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY"
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or INSECURE_DEV_SECRET_KEY
# Key rotation: the previous key(s), comma-separated, still open links and sessions made with them.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = [h.strip() for h in env_str("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
                 if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env_str("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
# A refused form post gets a plain page in the site's layout (nurture/web/links.py), not Django's technical one.
CSRF_FAILURE_VIEW = "nurture.web.answers.csrf_failure"
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000", schemes=("http", "https"))

INSTALLED_APPS = [
    # Django's admin on the two-factor site (config.admin_site.NurtureAdminSite).
    "config.apps.NurtureAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "anymail",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "csp",
    "django_celery_beat",
    "nurture.apps.NurtureConfig",
    "content.apps.ContentConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin CSS) straight from the web process, before sessions and the rest.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # After CSRF: a per-client limit on POSTs to the pages a link opens (nurture/web/token_limit.py).
    "nurture.web.token_limit.TokenPostLimit",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: refuses a locked-out login before it reaches the view.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "nurture.web.context_processors.organisation",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'nurture.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The local demo has web, worker and beat writing at once: WAL and immediate transactions
    # make them wait for each other instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # One connection per web thread / worker process, kept DATABASE_CONN_MAX_AGE seconds and checked
    # before reuse. The web server's fixed thread count bounds them: see "Database connections" in
    # docs/operations.md for the formula.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Parallel test runs on one server (several developers, CI) each need their own test database.
if env_str("NURTURE_TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("NURTURE_TEST_DB_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- i18n -------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Dates as each language writes them: "7 December 2026" in the British English copy (Django's "en"
# says "Dec. 7, 2026"); Spanish keeps Django's own "7 de diciembre de 2026".
FORMAT_MODULE_PATH = ["config.formats"]

# --- staff access (docs/security.md) ---------------------------------------------------------
# The admin's path, e.g. "staff-7f3a/" to keep it off the common scanners' list.
DJANGO_ADMIN_PATH = env_url_path("DJANGO_ADMIN_PATH", "admin/")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out username + address first
    "django.contrib.auth.backends.ModelBackend",
]
# Lockout (django-axes): this many failed logins per username and client address, then refused,
# even with the right password, for the cool-off period. Staff see and clear lockouts in admin.
NURTURE_LOGIN_FAILURE_LIMIT = env_int("NURTURE_LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
NURTURE_LOGIN_COOLOFF_MINUTES = env_int("NURTURE_LOGIN_COOLOFF_MINUTES", 30, minimum=1, maximum=7 * 24 * 60)
AXES_FAILURE_LIMIT = NURTURE_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=NURTURE_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Attempts refused during a lockout do not extend it: the 429 page can say exactly when to retry.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The client's address: nurture.web.client_ip (NURTURE_TRUSTED_PROXY_HEADER, below).
AXES_CLIENT_IP_CALLABLE = "nurture.web.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "nurture.admin.lockout.lockout_response"
AXES_VERBOSE = False
# Staff sessions end after this long without a request (a working day by default); each request
# renews it. Only staff have logged-in sessions.
NURTURE_STAFF_SESSION_IDLE_MINUTES = env_int("NURTURE_STAFF_SESSION_IDLE_MINUTES", 8 * 60, minimum=5,
                                             maximum=7 * 24 * 60)
SESSION_COOKIE_AGE = NURTURE_STAFF_SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
# Two-factor sign-in (django-otp, TOTP) is required whenever DEBUG is off (config.admin_site).
OTP_TOTP_ISSUER = "nurture"
# The audit trail of staff looks at one person's data: kept this long, purged daily.
NURTURE_AUDIT_RETENTION_DAYS = env_int("NURTURE_AUDIT_RETENTION_DAYS", 730, minimum=1, maximum=3650)

# Content Security Policy (django-csp) on every page: our own origin only, no inline scripts or
# styles. Pages that show an email's HTML set their own stricter policy
# (nurture.emails.EMAIL_HTML_CSP), which the middleware leaves in place.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [SELF],
        "frame-ancestors": [SELF],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}
# Responses that are an email's HTML (previews, "view as sent", "view in browser", the dev outbox)
# carry this instead: nothing loads or runs but the email's own inline styles and https images.
EMAIL_HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
# Browser features no page here uses.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "fullscreen", "geolocation",
        "gyroscope", "magnetometer", "microphone", "midi", "payment", "picture-in-picture", "publickey-credentials-get",
        "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
    )
}

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Files served at the site's root by WhiteNoise: /favicon.ico, which browsers ask for on any page
# without an icon link (an email's web version, a plain-text page), so it is never a 404.
WHITENOISE_ROOT = BASE_DIR / "public"
# Outside DEBUG, `collectstatic` (run when the image is built) writes hashed, compressed copies and
# WhiteNoise serves them with far-future cache headers. DEBUG (the local demo) serves the sources.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- the web server (gunicorn.conf.py reads these) ---------------------------------------------
# Each web process runs NURTURE_WEB_THREADS threads; each thread holds at most one database
# connection, so one web machine holds at most WORKERS x THREADS (docs/operations.md, "Size").
NURTURE_WEB_WORKERS = env_int("NURTURE_WEB_WORKERS", 2, minimum=1, maximum=64)
NURTURE_WEB_THREADS = env_int("NURTURE_WEB_THREADS", 4, minimum=1, maximum=64)
NURTURE_WEB_BIND = env_str("NURTURE_WEB_BIND", "0.0.0.0:8000")
NURTURE_WEB_TIMEOUT = env_int("NURTURE_WEB_TIMEOUT", 30, minimum=5, maximum=600)

# --- cache (rate limits and per-address throttles) -------------------------------------------
# Shared by every web and worker process: the Redis of CELERY_BROKER_URL by default; without Redis
# (the local demo) an in-process cache, which `manage.py check` flags outside DEBUG (nurture.W031).
_broker_for_cache = env_str("CELERY_BROKER_URL", "")
CACHE_URL = env_url(
    "CACHE_URL",
    _broker_for_cache if _broker_for_cache.startswith(("redis://", "rediss://")) else "locmem://",
    schemes=("redis", "rediss", "locmem"),
)
if CACHE_URL.startswith("locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "nurture"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": "nurture-cache"}}

# --- the public surface (docs/security.md, "Public surface") -----------------------------------
# Sign-up form posts per client address (django-ratelimit on the cache above).
NURTURE_SIGNUP_RATE = env_rate("NURTURE_SIGNUP_RATE", "20/h")
# The client address comes from this request header (e.g. X-Forwarded-For, its last entry: the
# address our own proxy saw) only when set; otherwise from the connection (REMOTE_ADDR).
# POSTs from one client to the pages a link opens (preferences, pause, carer confirmation...), per
# client address; over it a 429. Stopping emails (unsubscribe, a carer's stop) is never limited.
NURTURE_TOKEN_POST_RATE = env_rate("NURTURE_TOKEN_POST_RATE", "30/10m")
NURTURE_TRUSTED_PROXY_HEADER = env_str("NURTURE_TRUSTED_PROXY_HEADER", "").strip()
RATELIMIT_IP_META_KEY = "nurture.web.client_ip.client_ip"
RATELIMIT_USE_CACHE = "default"
# At most this many service emails (sign-up confirmations, "already subscribed", new links, bereavement
# support, the reply to a "stop" reply) per hour in all; above it they wait for room (a new sign-up is
# still accepted). NURTURE_CONFIRMATIONS_PER_HOUR is its former name, still read when the new one is unset.
NURTURE_SERVICE_EMAILS_PER_HOUR = env_int(
    "NURTURE_SERVICE_EMAILS_PER_HOUR", env_int("NURTURE_CONFIRMATIONS_PER_HOUR", 300, minimum=1), minimum=1
)
# Carer hand-off emails (the carer's confirmation, the subscriber's notices) per hour in all, under
# their own ceiling and on their own queue (`carers`): they can never delay a sign-up's confirmation.
NURTURE_CARER_EMAILS_PER_HOUR = env_int("NURTURE_CARER_EMAILS_PER_HOUR", 60, minimum=1)
# Carer requests one subscriber may make in 24 hours (each emails a stranger and the subscriber).
NURTURE_CARER_REQUESTS_PER_DAY = env_int("NURTURE_CARER_REQUESTS_PER_DAY", 3, minimum=1)
# Sign-up emails to one mailbox (plus-tag and dot variants count as one) per day.
NURTURE_SIGNUP_EMAILS_PER_ADDRESS_PER_DAY = env_int("NURTURE_SIGNUP_EMAILS_PER_ADDRESS_PER_DAY", 5, minimum=1)
# Preference and view-online links stop working after this many days ("email me a new link").
NURTURE_LINK_MAX_AGE_DAYS = env_int("NURTURE_LINK_MAX_AGE_DAYS", 90, minimum=1, maximum=3650)
# Providers that send no message id: an event acts only for an address we emailed this recently.
NURTURE_WEBHOOK_RECIPIENT_DAYS = env_int("NURTURE_WEBHOOK_RECIPIENT_DAYS", 30, minimum=1, maximum=365)

# --- celery -----------------------------------------------------------------------------------
# With no broker configured, kombu's filesystem transport under var/ needs no server.
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", "filesystem://", schemes=("filesystem", "redis", "rediss", "amqp", "memory")
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Without this kombu writes its broadcast (control) files to ./control in the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Redis redelivers unacked messages after this; must exceed the longest send batch.
        "visibility_timeout": env_int("NURTURE_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=60),
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Queues by purpose (nurture/queues.py, docs/scheduler.md): a worker consumes all four unless told
# otherwise (-Q), round-robin, so periodic work and service emails never wait behind a backlog of
# series emails. A task not listed goes to `periodic`.
from kombu import Queue  # noqa: E402

from nurture.queues import TASK_QUEUES, QueueNames  # noqa: E402

CELERY_TASK_QUEUES = tuple(Queue(name) for name in QueueNames.all())
CELERY_TASK_DEFAULT_QUEUE = QueueNames.PERIODIC
CELERY_TASK_ROUTES = {task: {"queue": queue} for task, queue in TASK_QUEUES.items()}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Processes per worker (each holds at most one database connection). `--concurrency` overrides it.
CELERY_WORKER_CONCURRENCY = env_int("NURTURE_WORKER_CONCURRENCY", 2, minimum=1, maximum=64)

# --- the series engine -------------------------------------------------------------------------
# How long one "day" of a series schedule lasts. 86400 in production; a few seconds for demos.
NURTURE_DAY_SECONDS = env_int("NURTURE_DAY_SECONDS", 86400, minimum=1)
NURTURE_PLAN_BATCH_SIZE = env_int("NURTURE_PLAN_BATCH_SIZE", 500, minimum=1, maximum=10000)
# Planners at once when more than one batch is due (PostgreSQL, each on its own connection).
NURTURE_PLAN_THREADS = env_int("NURTURE_PLAN_THREADS", 2, minimum=1, maximum=8)
# Delivery ids per send task, at most; fewer at a low ceiling (services/throttle.send_batch_size).
NURTURE_SEND_BATCH_SIZE = env_int("NURTURE_SEND_BATCH_SIZE", 500, minimum=1, maximum=1000)
NURTURE_CONFIRM_MAX_AGE_DAYS = env_int("NURTURE_CONFIRM_MAX_AGE_DAYS", 7, minimum=1)
# A repeated sign-up for a pending or unsubscribed address re-sends the confirmation at most this often.
NURTURE_CONFIRM_RESEND_MINUTES = env_int("NURTURE_CONFIRM_RESEND_MINUTES", 10, minimum=0)
NURTURE_SEND_WINDOW_START_HOUR = env_int("NURTURE_SEND_WINDOW_START_HOUR", 9, minimum=0, maximum=23)
NURTURE_SEND_WINDOW_END_HOUR = env_int("NURTURE_SEND_WINDOW_END_HOUR", 17, minimum=1, maximum=24)
# Plain language (content.readability): English Flesch-Kincaid grade (warn above / block publishing
# above), Spanish Fernández-Huerta ease (warn below / block below).
NURTURE_READING_GRADE_WARN_EN = env_float("NURTURE_READING_GRADE_WARN_EN", 8.0, minimum=1.0)
NURTURE_READING_GRADE_BLOCK_EN = env_float("NURTURE_READING_GRADE_BLOCK_EN", 12.0, minimum=1.0)
NURTURE_READING_EASE_WARN_ES = env_float("NURTURE_READING_EASE_WARN_ES", 60.0, minimum=0.0)
NURTURE_READING_EASE_BLOCK_ES = env_float("NURTURE_READING_EASE_BLOCK_ES", 45.0, minimum=0.0)
NURTURE_MIN_DAYS_BETWEEN_EMAILS = env_int("NURTURE_MIN_DAYS_BETWEEN_EMAILS", 2, minimum=0)
NURTURE_SENDS_PER_SECOND = env_float("NURTURE_SENDS_PER_SECOND", 14.0, minimum=0.1)
# Batch calls where the provider has one (Postmark, Resend: lists of whole messages; Mailgun,
# SparkPost, SendGrid: one body with merge fields); others send one message per call (docs/scheduler.md).
NURTURE_BATCH_SEND = env_bool("NURTURE_BATCH_SEND", True)
# Provider streams: service emails (confirmations, new links, carers) on the provider's transactional
# path, series emails on its bulk path (nurture/providers.py, docs/scheduler.md "Provider streams").
NURTURE_POSTMARK_TRANSACTIONAL_STREAM = env_str("NURTURE_POSTMARK_TRANSACTIONAL_STREAM", "outbound")
NURTURE_POSTMARK_BULK_STREAM = env_str("NURTURE_POSTMARK_BULK_STREAM", "broadcast")
NURTURE_TRANSACTIONAL_TAG = env_str("NURTURE_TRANSACTIONAL_TAG", "service")  # Mailgun tag, SendGrid category
NURTURE_BULK_TAG = env_str("NURTURE_BULK_TAG", "series")
NURTURE_SENDGRID_BULK_ASM_GROUP = env_int("NURTURE_SENDGRID_BULK_ASM_GROUP", 0, minimum=0)  # 0: none
NURTURE_SES_TRANSACTIONAL_CONFIGURATION_SET = env_str("NURTURE_SES_TRANSACTIONAL_CONFIGURATION_SET", "")
NURTURE_SES_BULK_CONFIGURATION_SET = env_str("NURTURE_SES_BULK_CONFIGURATION_SET", "")
NURTURE_MAILGUN_BULK_SENDER_DOMAIN = env_str("NURTURE_MAILGUN_BULK_SENDER_DOMAIN", "")  # "": the usual domain
# The complaint brake (services/brake.py): series sending pauses itself when, over the last day and
# at least NURTURE_BRAKE_MIN_EMAILS delivered series emails, complaints or hard bounces pass these
# shares (mailbox providers ask for complaints under 0.3%); staff resume it in the admin.
NURTURE_BRAKE_COMPLAINT_RATE = env_float("NURTURE_BRAKE_COMPLAINT_RATE", 0.001, minimum=0.0)
NURTURE_BRAKE_HARD_BOUNCE_RATE = env_float("NURTURE_BRAKE_HARD_BOUNCE_RATE", 0.02, minimum=0.0)
NURTURE_BRAKE_MIN_EMAILS = env_int("NURTURE_BRAKE_MIN_EMAILS", 500, minimum=1)
NURTURE_SENDING_TIMEOUT_SECONDS = env_int("NURTURE_SENDING_TIMEOUT_SECONDS", 900, minimum=30)
# Provider calls in flight per worker process (a thread pool); the shared ceiling still holds.
# 64: at a provider's 50 ms per call, 32 left the cores half idle (each worker waits while it refills
# its pool); 64 sent about a sixth more (docs/benchmarks.md).
NURTURE_SEND_CONCURRENCY = env_int("NURTURE_SEND_CONCURRENCY", 64, minimum=1, maximum=128)
# A write that meets a lost database connection reconnects and retries, this many tries in all
# (0.1 s, 0.3 s, 0.9 s ... up to 5 s apart); a provider's "accepted" then goes to the journal.
NURTURE_DB_RETRY_ATTEMPTS = env_int("NURTURE_DB_RETRY_ATTEMPTS", 6, minimum=1, maximum=20)
# Where accepted answers wait when the database is away (replayed by the next task); a volume.
NURTURE_JOURNAL_DIR = Path(env_str("NURTURE_JOURNAL_DIR", str(VAR_DIR / "journal")))
# After an infrastructure error (database, Redis) a batch's rows go back to queued for about this long.
NURTURE_RELEASE_BACKOFF_SECONDS = env_float("NURTURE_RELEASE_BACKOFF_SECONDS", 10.0, minimum=0.01)
# A delivery whose outcome is unknown (read timeout, worker lost mid-call) waits this long for the
# provider's webhook event, then is failed "unknown outcome" for staff.
NURTURE_UNKNOWN_OUTCOME_SECONDS = env_int("NURTURE_UNKNOWN_OUTCOME_SECONDS", 86400, minimum=1)
# The reconciler's sweeper re-enqueues queued deliveries due for longer than this when the broker's
# send queue is empty (their task was lost, e.g. a broker restart without persistence).
NURTURE_SWEEP_AFTER_SECONDS = env_int("NURTURE_SWEEP_AFTER_SECONDS", 30, minimum=1)
# Transient provider errors (429, 5xx, timeouts): exponential backoff with jitter, then give up.
NURTURE_SEND_MAX_ATTEMPTS = env_int("NURTURE_SEND_MAX_ATTEMPTS", 6, minimum=1, maximum=50)
NURTURE_RETRY_BASE_SECONDS = env_float("NURTURE_RETRY_BASE_SECONDS", 30.0, minimum=0.01)
# Keep below the broker's visibility timeout: a countdown task is held unacked until it runs.
NURTURE_RETRY_MAX_SECONDS = env_float("NURTURE_RETRY_MAX_SECONDS", 1800.0, minimum=0.01)
# Data retention (services/retention.py, daily): unconfirmed sign-ups are deleted this many days
# after their confirmation link expired; unsubscribed people this many days after leaving;
# provider webhook events after this many days.
NURTURE_PENDING_RETENTION_DAYS = env_int("NURTURE_PENDING_RETENTION_DAYS", 30, minimum=0, maximum=3650)
NURTURE_UNSUBSCRIBED_RETENTION_DAYS = env_int("NURTURE_UNSUBSCRIBED_RETENTION_DAYS", 90, minimum=1, maximum=3650)
NURTURE_EVENT_RETENTION_DAYS = env_int("NURTURE_EVENT_RETENTION_DAYS", 180, minimum=1, maximum=3650)
# Results page: an unsubscribe or pause counts against the last email a person had, if it came
# at most this many days after it.
NURTURE_RESULTS_LEAVE_WINDOW_DAYS = env_int("NURTURE_RESULTS_LEAVE_WINDOW_DAYS", 7, minimum=1, maximum=90)
NURTURE_CONTENT_REVIEW_MONTHS = env_int("NURTURE_CONTENT_REVIEW_MONTHS", 12, minimum=1)
# An approved article past its next review date: "hold" (default: not sent until approved again; the
# series moves on to its next sendable step) or "send" (keeps going out; staff are still reminded).
NURTURE_REVIEW_OVERDUE = env_choice("NURTURE_REVIEW_OVERDUE", "hold", choices=("hold", "send"))
# "Was this helpful?" comments are deleted this many days after they were written (the yes/no stays).
NURTURE_FEEDBACK_COMMENT_RETENTION_DAYS = env_int("NURTURE_FEEDBACK_COMMENT_RETENTION_DAYS", 365, minimum=1,
                                                  maximum=3650)
# The optional last question at the end of each series (a 1-to-5 scale), on unless set to 0.
NURTURE_IMPACT_QUESTION = env_bool("NURTURE_IMPACT_QUESTION", True)
NURTURE_REQUIRE_SERVICES = env_bool("NURTURE_REQUIRE_SERVICES", False)

# --- the organisation (shown in every email; placeholders are flagged by `manage.py check`) ----
NURTURE_ORG_NAME = env_str("NURTURE_ORG_NAME", "Second Opinion Guide (demo organisation)")
NURTURE_ORG_ADDRESS = env_str("NURTURE_ORG_ADDRESS", "[postal address not set]")
NURTURE_ORG_HELPLINE = env_str("NURTURE_ORG_HELPLINE", "[helpline not set]")
NURTURE_ORG_WEBSITE = env_str("NURTURE_ORG_WEBSITE", SITE_URL)
# "Tell us someone has died": the organisation's bereavement-support details (a few lines: a phone
# number, a web page), sent once to a carer who asks for them. Empty: the offer is not shown.
NURTURE_BEREAVEMENT_SUPPORT = env_str("NURTURE_BEREAVEMENT_SUPPORT", "")
# Replies: the address people's replies go to (set as Reply-To on every email; point the
# provider's inbound route for it at /anymail/<provider>/inbound/). Empty: no Reply-To header.
NURTURE_REPLY_ADDRESS = env_str("NURTURE_REPLY_ADDRESS", "")
# While a reply waits for a person, that subscriber's series is paused; marking it handled resumes it.
NURTURE_REPLY_PAUSES_SERIES = env_bool("NURTURE_REPLY_PAUSES_SERIES", True)
NURTURE_REPLY_RETENTION_DAYS = env_int("NURTURE_REPLY_RETENTION_DAYS", 90, minimum=1, maximum=3650)
# "Has anything changed?" check-ins: weeks between them per stage ("stage:weeks", comma
# separated; 0 turns a stage's off), also sent when a stage's series runs out. A week is seven
# NURTURE_DAY_SECONDS days.
NURTURE_CHECKIN_WEEKS = {
    stage.strip(): int(weeks)
    for stage, _, weeks in (part.partition(":") for part in env_str(
        "NURTURE_CHECKIN_WEEKS", "recently_diagnosed:8,in_treatment:8,in_remission:12").split(","))
    if stage.strip() and weeks.strip().isdigit()
}
NURTURE_UNSUBSCRIBE_MAILTO = env_str("NURTURE_UNSUBSCRIBE_MAILTO", "")
NURTURE_LIST_ID = env_str("NURTURE_LIST_ID", "second-opinion-guide.nurture.invalid")

# --- email ------------------------------------------------------------------------------------
# Locally, emails are written as .eml files under var/outbox/ (listed at /dev/outbox/ in DEBUG).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "nurture.mail.OutboxEmailBackend")
NURTURE_OUTBOX_DIR = Path(env_str("NURTURE_OUTBOX_DIR", str(VAR_DIR / "outbox")))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Second Opinion Guide <guide@example.org>")

# django-anymail: provider settings are passed through from ANYMAIL_* variables, e.g.
# ANYMAIL_POSTMARK_SERVER_TOKEN=... becomes ANYMAIL["POSTMARK_SERVER_TOKEN"].
import os as _os  # noqa: E402

ANYMAIL = {key[len("ANYMAIL_"):]: value for key, value in _os.environ.items() if key.startswith("ANYMAIL_")}
# Open and click tracking stay off unless the organisation turns them on (health data). The
# webhook stores open/click events only while the matching switch is on.
NURTURE_TRACK_OPENS = env_bool("NURTURE_TRACK_OPENS", False)
NURTURE_TRACK_CLICKS = env_bool("NURTURE_TRACK_CLICKS", False)
ANYMAIL.setdefault("SEND_DEFAULTS", {"track_opens": NURTURE_TRACK_OPENS, "track_clicks": NURTURE_TRACK_CLICKS})
# Provider webhooks (/anymail/<provider>/tracking/) need ANYMAIL_WEBHOOK_SECRET ("user:password",
# the basic auth the provider sends); without it they answer 404 (nurture/web/webhooks.py).

# --- logging ---------------------------------------------------------------------------------
# Plain text locally; LOG_FORMAT=json gives one JSON object per line (with task and delivery ids).
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", choices=("plain", "json"))
LOG_LEVEL = env_choice("LOG_LEVEL", "info", choices=("debug", "info", "warning", "error", "critical")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        # No token-shaped path segment, query string or address reaches a log line, in the message,
        # the traceback or an extra such as Django's `request` (nurture/log_redaction.py).
        "redact": {"()": "nurture.log_redaction.RedactPersonalData"},
        "context": {"()": "config.logs.ContextFilter"},
        "quiet_periodic": {"()": "config.logs.QuietPeriodicTasks"},
        "webhook_auth": {"()": "config.logs.WebhookAuthFailures"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context", "redact"],
        },
    },
    "loggers": {
        # Django's own handlers for these (DEFAULT_LOGGING) would print request paths unredacted.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # A webhook call with wrong credentials: a one-line WARNING, not an ERROR with a traceback.
        "django.security.AnymailWebhookValidationFailure": {"filters": ["webhook_auth"]},
        # django-axes logs every sign-in at INFO; its warnings (lockouts) are what matter.
        "axes": {"level": "WARNING"},
        # Celery would give its task logger a plain handler of its own; this one keeps the format.
        "celery.task": {"handlers": ["console"], "propagate": False},
        # Periodic runs that found nothing to do (and beat sending them) log at DEBUG.
        "celery.app.trace": {"filters": ["quiet_periodic"]},
        "celery.worker.strategy": {"filters": ["quiet_periodic"]},
        "celery.beat": {"filters": ["quiet_periodic"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# --- behind a TLS proxy ----------------------------------------------------------------------------
# In production the site is https (SITE_URL) behind a proxy that ends TLS. Tell Django which header
# the proxy sets (it must overwrite any such header from the client), e.g. X-Forwarded-Proto: then
# HTTP requests are redirected to https, HSTS is sent and cookies are marked Secure.
_https = SITE_URL.startswith("https://") and not DEBUG
_proxy_header = env_header("DJANGO_SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (_proxy_header, "https") if _proxy_header else None
# Redirect to https by default only when Django can tell the scheme (else every request would
# look like plain HTTP and redirect to itself); TLS ending at gunicorn itself: set it to 1.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", _https and bool(_proxy_header))
# Health checks and Prometheus scrapes come from inside the network over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000 if _https else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", _https)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- operability -------------------------------------------------------------------------------
# /metrics (Prometheus) answers only with "Authorization: Bearer <token>"; 404 while unset.
NURTURE_METRICS_TOKEN = env_str("NURTURE_METRICS_TOKEN", "")
# Error reports to Sentry (or a compatible service) only when set; otherwise sentry_sdk is not imported.
SENTRY_DSN = env_str("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "production")
if SENTRY_DSN:
    from config.sentry import init_sentry  # noqa: E402

    init_sentry(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT)
