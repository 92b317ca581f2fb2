"""The web UI's users, API tokens and settings in the store. Hashing and roles are the web layer's job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jqm_celery.errors import NotFoundError, ValidationError, did_you_mean
from jqm_celery.store.store import Store
from jqm_celery.store.web_models import WebSettingRow, WebTokenRow, WebUserRow


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: str
    password_hash: str
    created_at: datetime
    tokens: int = 0


class UserStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, name: str, role: str, password_hash: str, now: datetime) -> None:
        """A new user; refuses a name that exists."""
        try:
            with self.store.transaction() as s:
                if s.scalar(select(WebUserRow.id).where(WebUserRow.name == name)) is not None:
                    raise ValidationError(
                        f"user '{name}' already exists; pick another name or `jqm users remove {name}` first"
                    )
                s.add(
                    WebUserRow(
                        name=name, role=role, password_hash=password_hash, created_at=now, updated_at=now
                    )
                )
        except IntegrityError:
            raise ValidationError(f"user '{name}' already exists; pick another name") from None

    def remove(self, name: str) -> None:
        with self.store.transaction() as s:
            row = self._row(s, name)
            s.delete(row)

    def user(self, name: str) -> UserRecord | None:
        with self.store.transaction() as s:
            row = s.scalar(select(WebUserRow).where(WebUserRow.name == name))
            return None if row is None else _record(row)

    def users(self) -> list[UserRecord]:
        with self.store.transaction() as s:
            rows = s.scalars(select(WebUserRow).order_by(WebUserRow.name)).all()
            counts: dict[int, int] = {}
            for user_id in s.scalars(select(WebTokenRow.user_id)):
                counts[user_id] = counts.get(user_id, 0) + 1
            return [_record(row, counts.get(row.id, 0)) for row in rows]

    def add_token(self, name: str, token_hash: str, label: str, now: datetime) -> None:
        with self.store.transaction() as s:
            row = self._row(s, name)
            s.add(WebTokenRow(user_id=row.id, token_hash=token_hash, label=label, created_at=now))

    def revoke_tokens(self, name: str) -> int:
        with self.store.transaction() as s:
            row = self._row(s, name)
            result = s.execute(delete(WebTokenRow).where(WebTokenRow.user_id == row.id))
            return int(result.rowcount)  # type: ignore[attr-defined]

    def user_of_token(self, token_hash: str) -> UserRecord | None:
        with self.store.transaction() as s:
            row = s.scalar(
                select(WebUserRow)
                .join(WebTokenRow, WebTokenRow.user_id == WebUserRow.id)
                .where(WebTokenRow.token_hash == token_hash)
            )
            return None if row is None else _record(row)

    def read_setting(self, name: str) -> str | None:
        with self.store.transaction() as s:
            return s.scalar(select(WebSettingRow.value).where(WebSettingRow.name == name))

    def put_setting(self, name: str, value: str) -> None:
        with self.store.transaction() as s:
            row = s.get(WebSettingRow, name, with_for_update=True)
            if row is None:
                s.add(WebSettingRow(name=name, value=value))
            else:
                row.value = value

    def delete_settings_before(self, prefix: str, before: datetime) -> int:
        """Delete the settings named ``prefix…`` whose value, a time, is before ``before``."""
        with self.store.transaction() as s:
            stale = [
                name
                for name, value in s.execute(
                    select(WebSettingRow.name, WebSettingRow.value).where(
                        WebSettingRow.name.startswith(prefix)
                    )
                )
                if datetime.fromisoformat(value) < before
            ]
            if stale:
                s.execute(delete(WebSettingRow).where(WebSettingRow.name.in_(stale)))
            return len(stale)

    def setting(self, name: str, default: Callable[[], str]) -> str:
        """The stored value of ``name``; the first caller stores ``default()`` (one value, even in a race)."""
        with self.store.transaction() as s:
            value = s.scalar(select(WebSettingRow.value).where(WebSettingRow.name == name))
        if value is not None:
            return value
        try:
            with self.store.transaction() as s:
                s.add(WebSettingRow(name=name, value=default()))
        except IntegrityError:
            pass  # another process stored it first; theirs is the one everybody uses
        with self.store.transaction() as s:
            return str(s.scalar(select(WebSettingRow.value).where(WebSettingRow.name == name)))

    def _row(self, s: Session, name: str) -> WebUserRow:
        row = s.scalar(select(WebUserRow).where(WebUserRow.name == name))
        if row is None:
            names = list(s.scalars(select(WebUserRow.name)))
            raise NotFoundError(
                f"user '{name}' does not exist{did_you_mean(name, names)}; add it with `jqm users add {name}`"
            )
        return row


def _record(row: WebUserRow, tokens: int = 0) -> UserRecord:
    return UserRecord(row.name, row.role, row.password_hash, row.created_at, tokens)
