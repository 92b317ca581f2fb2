"""Users of the web UI and the REST API: add, sign in, API tokens. Backed by ``store/users.py``."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, available_timezones

from jqm_celery.errors import ValidationError, did_you_mean
from jqm_celery.store.users import UserStore
from jqm_celery.web.config import SESSION_MAX_AGE_S, SessionSecret, session_secret
from jqm_celery.web.passwords import hash_password, new_token, token_hash, verify_password
from jqm_celery.web.roles import Role, parse_role

if TYPE_CHECKING:
    from jqm_celery.manager import JobQueueManager

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MIN_PASSWORD = 8
_SECRET_SETTING = "session_secret"


@dataclass(frozen=True)
class WebUser:
    name: str
    role: Role


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: Role
    created_at: datetime
    tokens: int


class Users:
    """The web UI's users: add, sign in, API tokens, time zones; ``jqm.users()`` gives the manager's."""

    def __init__(self, jqm: JobQueueManager, store: UserStore) -> None:
        self.jqm = jqm
        self.store = store

    def add(self, name: str, role: Role | str, password: str) -> WebUser:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValidationError(
                f"user name {name!r} is not valid: use 1–100 letters, digits, '.', '_', '@' or '-'"
            )
        checked = role if isinstance(role, Role) else parse_role(role)
        if len(password) < MIN_PASSWORD:
            raise ValidationError(
                f"user '{name}': the password is {len(password)} characters long; use at least {MIN_PASSWORD}"
            )
        self.store.add(name, checked.value, hash_password(password), self.jqm.clock.now())
        return WebUser(name, checked)

    def remove(self, name: str) -> None:
        self.store.remove(name)

    def users(self) -> list[UserInfo]:
        return [UserInfo(u.name, Role(u.role), u.created_at, u.tokens) for u in self.store.users()]

    def authenticate(self, name: str, password: str) -> WebUser | None:
        record = self.store.user(name)
        if record is None:
            # Spend the same time as for a wrong password, so a login does not reveal which names exist.
            verify_password(password, _dummy_hash())
            return None
        return (
            WebUser(record.name, Role(record.role))
            if verify_password(password, record.password_hash)
            else None
        )

    def user(self, name: str) -> WebUser | None:
        record = self.store.user(name)
        return None if record is None else WebUser(record.name, Role(record.role))

    def create_token(self, name: str, label: str = "") -> str:
        """A new API token for the user; it is returned once and only its hash is stored."""
        token = new_token()
        self.store.add_token(name, token_hash(token), label[:100], self.jqm.clock.now())
        return token

    def revoke_tokens(self, name: str) -> int:
        return self.store.revoke_tokens(name)

    def user_of_token(self, token: str) -> WebUser | None:
        record = self.store.user_of_token(token_hash(token))
        return None if record is None else WebUser(record.name, Role(record.role))

    def time_zone(self, name: str) -> str | None:
        """The time zone the user chose on their profile, or None (the web UI then uses the browser's)."""
        return self.store.read_setting(_tz_setting(name))

    def set_time_zone(self, name: str, tz: str) -> str:
        """Store ``tz`` (an IANA name, checked) as the user's time zone; returns it."""
        zone = parse_time_zone(tz)
        self.store.put_setting(_tz_setting(name), zone)
        return zone

    def session_secret(self) -> str:
        """The key that signs session cookies (see ``signing_secret``)."""
        return self.signing_secret().value

    def signing_secret(self) -> SessionSecret:
        """The session signing secret from ``JQM_WEB_SECRET``, ``JQM_WEB_SECRET_FILE``, ``jqm_web_secret``
        or ``jqm_web_secret_file``; else one generated once and kept in the store (with a warning)."""
        return session_secret(
            self.jqm.app.conf,
            os.environ,
            lambda: self.store.setting(_SECRET_SETTING, lambda: secrets.token_urlsafe(48)),
        )

    def end_session(self, session_id: str) -> None:
        """Sign a session out on the server: its cookie is refused from now on, by every process."""
        now = self.jqm.clock.now()
        self.store.put_setting(_ended_setting(session_id), now.isoformat())
        # Sessions ended longer ago than a cookie lives can no longer be shown: forget them.
        self.store.delete_settings_before(ENDED_PREFIX, now - timedelta(seconds=SESSION_MAX_AGE_S))

    def session_ended(self, session_id: str) -> bool:
        return self.store.read_setting(_ended_setting(session_id)) is not None


ENDED_PREFIX = "ended:"


def parse_time_zone(tz: str) -> str:
    """``tz`` if it is an IANA time zone name, else a ValidationError with the closest names."""
    tz = tz.strip()
    try:
        ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        fix = did_you_mean(tz, available_timezones()) or "; use an IANA name such as Europe/Amsterdam or UTC"
        raise ValidationError(f"unknown time zone '{tz}'{fix}") from None
    return tz


def _ended_setting(session_id: str) -> str:
    # An ended session is one row of the web's settings; a session's cookie lives at most 12 hours.
    return f"{ENDED_PREFIX}{hashlib.sha256(session_id.encode()).hexdigest()[:40]}"


def _tz_setting(name: str) -> str:
    # Kept with the web's other settings (no column for it); a digest keeps long user names in 64 chars.
    return f"tz:{hashlib.sha256(name.encode()).hexdigest()[:40]}"


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))
