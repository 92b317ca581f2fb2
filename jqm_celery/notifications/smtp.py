"""The SMTP server mail goes out through: ``jqm_smtp_url``, parsed once, password kept out of sight.

``smtp://user:secret@mail.example.com:587?starttls=true`` (STARTTLS), ``smtps://…:465`` (TLS from the
first byte; ``smtp://…?ssl=true`` is the same), ``smtp://mail.example.com`` (plain, port 25). Optional
query parameter: ``timeout`` in seconds (default 30).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from jqm_celery.errors import ConfigError

if TYPE_CHECKING:
    from email.message import EmailMessage

_DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Security(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    SSL = "ssl"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    username: str | None = None
    #: Never printed: ``repr`` leaves it out and ``redacted()`` replaces it.
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0

    def redacted(self) -> str:
        """The server as it may be shown: ``smtp://user:***@host:587?starttls=true``."""
        scheme = "smtps" if self.security is Security.SSL else "smtp"
        user = "" if self.username is None else f"{self.username}{':***' if self.password else ''}@"
        query = "?starttls=true" if self.security is Security.STARTTLS else ""
        return f"{scheme}://{user}{self.host}:{self.port}{query}"

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced by ***, for error messages that echo what they were given."""
        return text.replace(self.password, "***") if self.password else text

    def send(self, message: EmailMessage) -> None:
        """Hand the message to the server; raises an ``smtplib``/``OSError`` exception if it is refused."""
        import smtplib  # only a process that sends mail needs it

        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.security is Security.SSL:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with client:
            if self.security is Security.STARTTLS:
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)


def parse_smtp_url(url: object) -> SmtpSettings:
    """The settings of ``jqm_smtp_url``; ConfigError (without the password) if it is malformed."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"jqm_smtp_url must be a URL such as 'smtp://user:password@mail.example.com:587?starttls=true', "
            f"got {type(url).__name__}"
        )
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        password = None if parts.password is None else unquote(parts.password)
    except ValueError as exc:
        raise ConfigError(f"jqm_smtp_url {_shown(url)!r} is not a valid URL ({_why(exc)})") from None

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"jqm_smtp_url {_shown(url)!r}: {problem}")

    if parts.scheme not in ("smtp", "smtps"):
        raise fail(f"scheme '{parts.scheme or 'none'}' is not supported; use smtp:// or smtps://")
    if not parts.hostname:
        raise fail("names no server; e.g. smtp://mail.example.com:587?starttls=true")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"starttls", "ssl", "timeout"})
    if unknown:
        raise fail(f"unknown parameter(s) {', '.join(unknown)}; known: starttls, ssl, timeout")
    flags = {}
    for key in ("starttls", "ssl"):
        value = query.get(key, ["false"])[-1].lower()
        if value not in _TRUE | _FALSE | {""}:
            raise fail(f"{key} must be true or false, got {value!r}")
        flags[key] = value in _TRUE or value == ""
    starttls = flags["starttls"]
    use_ssl = parts.scheme == "smtps" or flags["ssl"]
    if starttls and use_ssl:
        raise fail("starttls and ssl exclude each other; smtps:// (or ssl=true) already encrypts")
    security = Security.SSL if use_ssl else Security.STARTTLS if starttls else Security.NONE
    timeout_s = 30.0
    if "timeout" in query:
        try:
            timeout_s = float(query["timeout"][-1])
        except ValueError:
            raise fail(f"timeout must be a number of seconds, got {query['timeout'][-1]!r}") from None
        if timeout_s <= 0:
            raise fail(f"timeout must be > 0 seconds, got {timeout_s:g}")
    return SmtpSettings(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[security],
        security=security,
        username=None if parts.username is None else unquote(parts.username),
        password=password,
        timeout_s=timeout_s,
    )


def _shown(url: str) -> str:
    """The URL with whatever sits between '://' and the last '@' reduced to the user name and ***."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return "***" if "@" in url else url
    credentials, at, location = rest.rpartition("@")
    if not at:
        return url.strip()
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}" if ":" in credentials else f"{scheme}://{user}@{location}"


def _why(exc: ValueError) -> str:
    # urllib's messages quote the bad port, never the password; keep only the first clause to be sure.
    return str(exc).split(":", 1)[0]
