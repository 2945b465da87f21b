"""Every table keel owns, imported in one place for Alembic and the tests."""

from __future__ import annotations

from keel.core import idempotency, jobs, outbox
from keel.core.models import Base
from keel.identity.api_keys import models as api_key_models
from keel.identity.audit import models as audit_models
from keel.identity.orgs import models as org_models
from keel.identity.tokens import models as token_models
from keel.identity.users import models as user_models
from keel.realtime.devices import models as device_models
from keel.realtime.events import models as realtime_event_models
from keel.webhooks.deliveries import models as webhook_delivery_models
from keel.webhooks.endpoints import models as webhook_endpoint_models
from keel.work.bookmarks import models as bookmark_models
from keel.work.projects import models as project_models
from keel.work.reports import models as report_models
from keel.work.tasks import models as task_models

metadata = Base.metadata

__all__ = [
    "api_key_models",
    "audit_models",
    "bookmark_models",
    "device_models",
    "idempotency",
    "jobs",
    "metadata",
    "org_models",
    "outbox",
    "project_models",
    "realtime_event_models",
    "report_models",
    "task_models",
    "token_models",
    "user_models",
    "webhook_delivery_models",
    "webhook_endpoint_models",
]
