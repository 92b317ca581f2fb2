"""Runnable examples of jqm-celery; installed as ``jqm_celery.examples``. Copy from them freely."""
