"""Notifications: e-mail and webhooks per package (or queue) and scenario, sent off the critical path."""

from jqm_celery.notifications.rules import Notify, Scenario, Webhook

__all__ = ["Notify", "Scenario", "Webhook"]
