"""All SQL of reports: the shared org-scoped queries (see keel.core.repository)."""

from __future__ import annotations

from keel.core.repository import OrgRepository
from keel.work.reports.models import Report


class ReportRepository(OrgRepository[Report]):
    model = Report
