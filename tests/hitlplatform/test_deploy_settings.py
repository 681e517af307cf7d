"""Production settings: `check --deploy` clean, DEBUG refused, development kept on plain http."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
PRODUCTION = {
    "HITL_PRODUCTION": "1",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "example.com",
}


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run with only the given environment: nothing of the test process's leaks in."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
    return subprocess.run(
        [sys.executable, *args],
        env={**base, **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_in(**env: str) -> dict:
    names = [
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER",
    ]
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    done = run("-c", script, DJANGO_SETTINGS_MODULE="hitlplatform.settings", **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_check_deploy_passes_with_no_warnings_in_production():
    done = run(MANAGE, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNINGS" not in done.stdout + done.stderr


def test_debug_is_refused_in_production():
    done = run(MANAGE, "check", DEBUG="1", **PRODUCTION)
    assert done.returncode != 0
    assert "ImproperlyConfigured: DEBUG must be off when HITL_PRODUCTION=1." in done.stderr


def test_production_without_secret_key_is_refused():
    done = run(MANAGE, "check", HITL_PRODUCTION="1", ALLOWED_HOSTS="example.com")
    assert done.returncode != 0
    assert "SECRET_KEY must be set when HITL_PRODUCTION=1." in done.stderr


def test_production_defaults_are_https_only():
    assert settings_in(**PRODUCTION) == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_development_defaults_keep_plain_http():
    values = settings_in(SQLITE_PATH="/tmp/hitl-unused.sqlite3")
    assert not any(values[name] for name in values)


def test_each_setting_follows_its_environment_variable():
    values = settings_in(
        **PRODUCTION,
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_PRELOAD="0",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SECURE_HSTS_PRELOAD"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
