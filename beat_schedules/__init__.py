"""The beat side of jqm-celery: turns stored recurrences into Celery beat firings.

- :class:`PackageScheduler`: ``celery -A proj beat -S beat_schedules:PackageScheduler``.
- :mod:`beat_schedules.django`: a bridge that schedules the same packages through django-celery-beat.
"""

from beat_schedules.scheduler import PackageScheduler

__all__ = ["PackageScheduler"]
