"""Demo data: one org with members, projects and many tasks, fast.

Core inserts (not ORM bulk inserts, which go row by row for versioned
models) keep 100k tasks on SQLite to seconds.

Accounts are created through the identity services (real password hashes);
tasks are bulk-inserted in batches, so 100k tasks take seconds, not minutes.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Table, insert, text

from keel.config import Settings
from keel.core.clock import now
from keel.core.db import Database
from keel.core.models import Base, new_id
from keel.core.principal import OrgScope, Principal, Role
from keel.core.request_info import RequestInfo
from keel.core.security import PasswordHasher
from keel.identity.orgs import service as orgs
from keel.identity.users import service as users
from keel.work.projects.models import Project
from keel.work.tasks.models import Task

_BATCH = 5_000
_VERBS = ["Write", "Review", "Fix", "Plan", "Ship", "Test", "Design", "Migrate", "Document", "Measure"]
_NOUNS = [
    "release notes",
    "login flow",
    "billing export",
    "search index",
    "onboarding",
    "dashboard",
    "API docs",
    "load test",
    "backup job",
    "webhook retries",
    "mobile sync",
    "audit report",
]
_LABELS = ["backend", "frontend", "ops", "bug", "feature", "chore", "urgent", "customer"]
_STATUSES = ["todo", "in_progress", "blocked", "done"]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


@dataclass
class SeededOrg:
    org_id: str
    accounts: list[tuple[str, str]]  # (email, password)
    tasks: int


async def seed_demo(
    settings: Settings, *, tasks: int, members: int = 5, projects: int = 10, seed: int = 7
) -> SeededOrg:
    rng = random.Random(seed)  # noqa: S311 - demo data, reproducible on purpose
    database = Database(settings.database)
    hasher = PasswordHasher(settings.auth)
    origin = RequestInfo(request_id="keel-seed")
    tag = secrets.token_hex(3)
    try:
        async with database.session(write=True) as session:
            accounts: list[tuple[str, str]] = []
            user_ids = []
            for index in range(members):
                email, password = f"demo{index}-{tag}@example.com", secrets.token_urlsafe(12)
                user = await users.register(
                    session, hasher, origin, email=email, password=password, name=f"Demo {index}"
                )
                accounts.append((email, password))
                user_ids.append(user.id)
            owner = Principal(user_id=user_ids[0])
            org = await orgs.create_org(session, owner, origin, name=f"Demo {tag}")
            scope = OrgScope(org_id=org.id, role=Role.OWNER, principal=owner)
            for email, _ in accounts[1:]:
                await orgs.add_member(session, scope, origin, email=email, role=Role.MEMBER)
            moment = now()
            project_rows = [
                {
                    "id": new_id(),
                    "org_id": org.id,
                    "name": f"Project {n}",
                    "description": "",
                    "created_by_id": owner.user_id,
                    "created_at": moment,
                    "updated_at": moment,
                    "version": 1,
                }
                for n in range(projects)
            ]
            await session.execute(insert(_table(Project)), project_rows)
            await session.commit()

        start = moment - timedelta(days=365)
        step = timedelta(days=365) / max(tasks, 1)
        for offset in range(0, tasks, _BATCH):
            rows = []
            for n in range(offset, min(offset + _BATCH, tasks)):
                created = start + step * n
                rows.append(
                    {
                        "id": new_id(),
                        "org_id": org.id,
                        "title": f"{rng.choice(_VERBS)} {rng.choice(_NOUNS)} #{n}",
                        "description": f"{rng.choice(_VERBS)} the {rng.choice(_NOUNS)} for {rng.choice(_NOUNS)}.",
                        "status": rng.choice(_STATUSES),
                        "priority": rng.randint(0, 4),
                        "project_id": rng.choice(project_rows)["id"] if rng.random() < 0.8 else None,
                        "assignee_id": rng.choice(user_ids) if rng.random() < 0.7 else None,
                        "due_at": created + timedelta(days=rng.randint(-10, 60)) if rng.random() < 0.5 else None,
                        "labels": rng.sample(_LABELS, rng.randint(0, 3)),
                        "created_by_id": rng.choice(user_ids),
                        "created_at": created,
                        "updated_at": created,
                        "version": 1,
                    }
                )
            async with database.session(write=True) as session:
                await session.execute(insert(_table(Task)), rows)
                await session.commit()
        # Fresh statistics: right after a bulk load the planner would otherwise
        # guess a handful of rows and pick plans that sort whole tables.
        async with database.engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
        return SeededOrg(org_id=str(org.id), accounts=accounts, tasks=tasks)
    finally:
        await database.dispose()
