"""The test app as a module attribute for ``jqm --app tests.integration.cliapp:app`` (conf: JQM_TEST_CONF)."""

from __future__ import annotations

import json
import os

from tests.integration.testapp import make_app

app = make_app(json.loads(os.environ["JQM_TEST_CONF"]))
