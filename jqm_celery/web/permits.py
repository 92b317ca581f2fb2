"""Route parameters that are the signed-in user, permitted for one action each (see ``roles.PERMISSIONS``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from jqm_celery.web.roles import Action
from jqm_celery.web.security import Permit
from jqm_celery.web.users import WebUser

Viewer = Annotated[WebUser, Depends(Permit(Action.VIEW))]
Creator = Annotated[WebUser, Depends(Permit(Action.CREATE_PACKAGE))]
Editor = Annotated[WebUser, Depends(Permit(Action.EDIT_PACKAGE))]
Deleter = Annotated[WebUser, Depends(Permit(Action.DELETE_PACKAGE))]
Activator = Annotated[WebUser, Depends(Permit(Action.ACTIVATE))]
Holder = Annotated[WebUser, Depends(Permit(Action.HOLD))]
Runner = Annotated[WebUser, Depends(Permit(Action.RUN_NOW))]
RunCanceller = Annotated[WebUser, Depends(Permit(Action.CANCEL_RUN))]
JobCanceller = Annotated[WebUser, Depends(Permit(Action.CANCEL_JOB))]
Aborter = Annotated[WebUser, Depends(Permit(Action.ABORT_JOB))]
Requeuer = Annotated[WebUser, Depends(Permit(Action.REQUEUE_JOB))]
Enqueuer = Annotated[WebUser, Depends(Permit(Action.ENQUEUE_JOB))]
Cleaner = Annotated[WebUser, Depends(Permit(Action.CLEAN_JOBS))]
QueuePauser = Annotated[WebUser, Depends(Permit(Action.PAUSE_QUEUE))]
QueueShutter = Annotated[WebUser, Depends(Permit(Action.SHUT_DOWN_QUEUE))]
RunCleaner = Annotated[WebUser, Depends(Permit(Action.CLEAN_RUNS))]
