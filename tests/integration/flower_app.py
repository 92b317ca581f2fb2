"""The test app for ``celery -A tests.integration.flower_app flower``: its conf comes from JQM_TEST_CONF."""

from __future__ import annotations

import json
import os

from tests.integration.testapp import make_app

app = make_app(json.loads(os.environ["JQM_TEST_CONF"]))
