"""Run a real Celery worker for the tests: ``python -m tests.integration.worker CONF_JSON [celery args…]``."""

from __future__ import annotations

import json
import sys

from tests.integration.testapp import make_app

if __name__ == "__main__":
    app = make_app(json.loads(sys.argv[1]))
    app.worker_main(["worker", *sys.argv[2:]])
