"""The web app's settings, read once at start: the session signing secret, the request body limit and the
sign-in limits.

The signing secret comes, first found first, from the environment (``JQM_WEB_SECRET``, or
``JQM_WEB_SECRET_FILE`` naming a file that holds it) or the app's conf (``jqm_web_secret``,
``jqm_web_secret_file``). With none of them, one is generated on first start and kept in the store — the
embedded and demo default, so every process of one store shares it — and the app warns at start that
anyone who can read the database can then sign a session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from jqm_celery.errors import ConfigError

#: How long a session cookie is valid; an ended session is remembered on the server for as long.
SESSION_MAX_AGE_S = 12 * 3600
SECRET_ENV = "JQM_WEB_SECRET"
SECRET_FILE_ENV = "JQM_WEB_SECRET_FILE"
#: Shorter secrets are accepted (existing deployments keep working) with a warning at start.
MIN_SECRET_CHARS = 32
SECRET_FIX = (
    f"put a random secret in a file readable only by the web server's user (python -c 'import secrets; "
    f"print(secrets.token_urlsafe(48))' > /etc/jqm/web-secret) and set {SECRET_FILE_ENV}=/etc/jqm/web-secret "
    f"(or {SECRET_ENV}, or app.conf.jqm_web_secret / jqm_web_secret_file); changing it ends every session"
)


@dataclass(frozen=True)
class SessionSecret:
    """The key that signs session cookies, and where it came from (for the start-up message)."""

    value: str
    source: str
    in_store: bool = False

    def warning(self) -> str | None:
        """What is wrong with this secret and how to fix it, or None."""
        if self.in_store:
            return (
                "the session signing secret is kept in the store, beside the users it protects: anyone who "
                f"can read the database can sign a session as any user. To fix it, {SECRET_FIX}"
            )
        if len(self.value) < MIN_SECRET_CHARS:
            return (
                f"the session signing secret from {self.source} is {len(self.value)} characters long; "
                f"use at least {MIN_SECRET_CHARS} random ones: {SECRET_FIX}"
            )
        return None


def session_secret(conf: Any, environ: Mapping[str, str], stored: Callable[[], str]) -> SessionSecret:
    """The signing secret from the environment or the conf, else ``stored()`` (see the module's doc)."""
    sources: list[tuple[str, object, bool]] = [
        (SECRET_ENV, environ.get(SECRET_ENV), False),
        (SECRET_FILE_ENV, environ.get(SECRET_FILE_ENV), True),
        ("jqm_web_secret", conf.get("jqm_web_secret"), False),
        ("jqm_web_secret_file", conf.get("jqm_web_secret_file"), True),
    ]
    for name, value, is_file in sources:
        if value is None or value == "":
            continue
        if is_file:
            return SessionSecret(_read_secret_file(name, str(value)), f"{name} ({value})")
        return SessionSecret(str(value), name)
    return SessionSecret(stored(), "the store", in_store=True)


def _read_secret_file(name: str, path: str) -> str:
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{name} names '{path}', which cannot be read ({exc.strerror}); {SECRET_FIX}"
        ) from None
    if not secret:
        raise ConfigError(f"{name} names '{path}', which is empty; {SECRET_FIX}")
    return secret


@dataclass(frozen=True)
class WebSettings:
    """The ``jqm_web_*`` limits of the web app (each a positive number)."""

    #: A request body larger than this is refused with 413 (checked before it is read).
    max_body_bytes: int = 1024 * 1024
    #: Failed sign-ins of one account, and from one address, allowed within ``login_window_s``.
    login_failures_per_account: int = 10
    login_failures_per_address: int = 50
    login_window_s: float = 900.0

    @classmethod
    def from_conf(cls, conf: Any) -> WebSettings:
        """The settings from ``jqm_web_<field>`` on the app's conf; a ConfigError names a bad one."""
        values: dict[str, float] = {}
        for item in fields(cls):
            default = getattr(cls, item.name)
            value = conf.get(f"jqm_web_{item.name}")
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, type(default) | int) or not 0 < value < 1e18:
                raise ConfigError(
                    f"jqm_web_{item.name} must be a positive number (default {default:g}), got {value!r}"
                )
            values[item.name] = type(default)(value)
        return cls(**values)  # type: ignore[arg-type]
