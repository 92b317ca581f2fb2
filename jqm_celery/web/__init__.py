"""The web UI and REST API (``pip install 'jqm-celery[web]'``): ``create_app(jqm)``, served by ``jqm web``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from jqm_celery.manager import JobQueueManager


def create_app(jqm: JobQueueManager) -> FastAPI:
    """The FastAPI app for ``jqm``; see ``jqm_celery.web.app``."""
    # Imported here so that the roles and users (used by the CLI) need no web framework installed.
    from jqm_celery.web.app import create_app as build

    return build(jqm)


__all__ = ["create_app"]
