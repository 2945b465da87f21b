"""Work's routes, included by work.install."""

from __future__ import annotations

from fastapi import APIRouter

from keel.work.bookmarks.router import router as bookmarks_router
from keel.work.dashboard.router import router as dashboard_router
from keel.work.projects.router import router as projects_router
from keel.work.reports.router import router as reports_router
from keel.work.search.router import router as search_router
from keel.work.tasks.router import router as tasks_router

routers: list[APIRouter] = [
    projects_router,
    tasks_router,
    reports_router,
    bookmarks_router,
    dashboard_router,
    search_router,
]
