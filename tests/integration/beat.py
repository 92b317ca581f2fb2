"""Run real Celery beat for the tests: ``python -m tests.integration.beat CONF_JSON [celery beat args…]``.

It is the ``celery beat -S beat_schedules:PackageScheduler`` command, run on the tests' app.
"""

from __future__ import annotations

import json
import sys

from tests.integration.testapp import make_app

if __name__ == "__main__":
    app = make_app(json.loads(sys.argv[1]))
    app.start(["beat", "-S", "beat_schedules:PackageScheduler", *sys.argv[2:]])
