"""A definition loaded into the package forms and posted unchanged comes back equal, field for field.

The fast half of the round trip (the form values and their parsing, many examples); the browser test in
``tests/integration/test_web_browser.py`` posts the same forms through Chromium.
"""

from __future__ import annotations

from hypothesis import given, settings

from jqm_celery import Package
from jqm_celery.web import forms
from tests.definitions_strategies import packages

TASKS = ["billing.export", "billing.upload"]


@settings(max_examples=300, deadline=None)
@given(packages("nightly", TASKS))
def test_every_field_survives_the_forms_values_and_parsing(package: Package) -> None:
    for entry in package.entries:
        assert forms.parse_entry(forms.entry_values(entry), TASKS).value == entry
    for recurrence in package.recurrences:
        assert forms.parse_recurrence(forms.recurrence_values(recurrence)).value == recurrence
    for rule in package.notifications:
        values = forms.rule_values(rule)
        assert forms.parse_rule(values, values["on"].split(",")).value == rule
