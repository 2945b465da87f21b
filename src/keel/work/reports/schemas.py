from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from keel.core.schemas import InputModel, IsoDate, PatchModel


class ReportStatus(StrEnum):
    """A report is a draft until published."""

    DRAFT = "draft"
    PUBLISHED = "published"


def _check_period(start: date | None, end: date | None) -> None:
    if start and end and end < start:
        raise ValueError("period_end is before period_start")


class ReportCreate(InputModel):
    """A new report: a title, a markdown body and the period it covers."""

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=100_000, description="Markdown.")
    period_start: IsoDate | None = None
    period_end: IsoDate | None = None
    status: ReportStatus = ReportStatus.DRAFT

    @model_validator(mode="after")
    def _period_in_order(self) -> ReportCreate:
        _check_period(self.period_start, self.period_end)
        return self


class ReportUpdate(PatchModel):
    """Only the fields sent change."""

    non_null = ("title", "body", "status")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, max_length=100_000)
    period_start: IsoDate | None = None
    period_end: IsoDate | None = None
    status: ReportStatus | None = None

    @model_validator(mode="after")
    def _period_in_order(self) -> ReportUpdate:
        _check_period(self.period_start, self.period_end)
        return self


class ReportRead(BaseModel):
    """A report."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    title: str
    body: str
    period_start: date | None
    period_end: date | None
    status: ReportStatus
    created_by_id: uuid.UUID | None = Field(description="The author.")
    created_at: datetime
    updated_at: datetime
    version: int
