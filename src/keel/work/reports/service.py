"""Reports: markdown documents for a period, drafted then published."""

from __future__ import annotations

from keel.core.org_resources import OrgResources
from keel.work.reports.repository import ReportRepository
from keel.work.reports.schemas import ReportRead

resources = OrgResources(
    ReportRepository, ReportRead.model_validate, event_prefix="report", noun="Report", event_fields=("title", "status")
)
