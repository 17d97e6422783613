"""The embedded broker's authentication: every client is accepted, none is "anonymous".

amqtt's own AnonymousAuthPlugin marks each session anonymous, and amqtt then neither
queues QoS 1/2 messages for a disconnected persistent session (clean session 0) nor keeps
the session, which MQTT 3.1.1 requires and mosquitto does. The broker listens on loopback
only, so accepting everyone is the same trust as anonymous access, with proper sessions.
amqtt imports this module by its dotted path when the broker starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

__all__ = ["LoopbackAuthPlugin"]


class LoopbackAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Accept every client (loopback only) with a normal, non-anonymous session."""

    async def authenticate(self, *, session: Session) -> bool:
        return True

    @dataclass
    class Config:
        """No options."""
