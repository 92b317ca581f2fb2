"""``python -m jqm_celery.cli`` is ``jqm``."""

from jqm_celery.cli import main

main()
