from __future__ import annotations

from datetime import UTC, datetime

from keel.core.auth import ViewerScope
from keel.core.openapi import problem_responses
from keel.core.transactions import transactional_router
from keel.identity.orgs.service import member_names
from keel.realtime.presence.schemas import OnlineMember, PresenceRead, SessionRead
from keel.realtime.services import RealtimeDep

router = transactional_router(
    prefix="/orgs/{org_id}/presence", tags=["realtime"], responses=problem_responses(401, 403, 404, 429)
)


@router.get("", response_model=PresenceRead)
async def org_presence(scope: ViewerScope, realtime: RealtimeDep) -> PresenceRead:
    """Members online now, each with their live sessions and devices. Auth: viewer+."""
    names = await member_names(scope.session, scope.org_id)
    online, degraded = await realtime.presence.of_users(sorted(names))
    items = [
        OnlineMember(
            user_id=user_id,
            name=names[user_id],
            sessions=[
                SessionRead(
                    session_id=s.session_id,
                    device_id=s.device_id,
                    device_name=s.device_name,
                    device_type=s.device_type,
                    connected_at=datetime.fromtimestamp(s.connected_at, UTC),
                )
                for s in sessions
            ],
        )
        for user_id, sessions in sorted(online.items(), key=lambda item: names[item[0]])
    ]
    return PresenceRead(items=items, degraded=degraded)
