from __future__ import annotations

from datetime import UTC, datetime

from keel.core.auth import ViewerScope
from keel.core.openapi import problem_responses
from keel.core.transactions import transactional_router
from keel.identity.orgs.service import member_names
from keel.realtime.devices.service import described
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
    device_ids = {s.device_id for sessions in online.values() for s in sessions if s.device_id is not None}
    devices = await described(scope.session, device_ids)
    items = [
        OnlineMember(
            user_id=user_id,
            name=names[user_id],
            sessions=[
                SessionRead(
                    session_id=s.session_id,
                    device_id=s.device_id,
                    device_name=devices[s.device_id].name if s.device_id in devices else None,
                    device_type=devices[s.device_id].type if s.device_id in devices else "web",
                    connected_at=datetime.fromtimestamp(s.connected_at, UTC),
                )
                for s in sessions
            ],
        )
        for user_id, sessions in sorted(online.items(), key=lambda item: names[item[0]])
    ]
    return PresenceRead(items=items, degraded=degraded)
