"""The audit trail: who changed what, and when."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from jqm_celery.web.params import OptionalText, manager
from jqm_celery.web.permits import Viewer
from jqm_celery.web.templating import page

router = APIRouter()
LIMIT = 500


@router.get("/audit")
def audit(request: Request, user: Viewer, package: OptionalText = "") -> HTMLResponse:
    entries = manager(request).audit(package=package or None, limit=LIMIT)
    return page(request, user, "audit.html", entries=entries[::-1], package=package)
