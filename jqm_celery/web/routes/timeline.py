"""The next 24 hours of fires of every ACTIVE package on one timeline, in the viewer's zone."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from jqm_celery.web.params import manager
from jqm_celery.web.permits import Viewer
from jqm_celery.web.templating import page, viewer_zone
from jqm_celery.web.timeline import lay_out

router = APIRouter()
SPAN = timedelta(hours=24)


@router.get("/timeline")
def timeline(request: Request, user: Viewer) -> HTMLResponse:
    jqm = manager(request)
    fires = jqm.upcoming_fires(SPAN)
    return page(
        request, user, "timeline.html", timeline=lay_out(fires, jqm.clock.now(), SPAN, viewer_zone(request))
    )
