"""The integrator's verifying consumer: subscribe, verify, track, report typed outcomes.

.. code-block:: python

    trust = SiteTrust.from_files(["site-ca.pem"])
    async with Consumer("mqtts://broker:8883", trust=trust, tls=tls_context(...)) as c:
        async for outcome in c:
            match outcome:
                case Verified(batch=b, anomalies=a): ...
                case Rejected(reason=r, detail=d): ...
                case KeyLearned(): ...

See ``docs/integrator-guide.md``. The pieces: :mod:`.trust` (site CA checks, pinned
certificates), :mod:`.core` (the sans-I/O :class:`Inspector`), :mod:`.tracking` (pluggable
trackers and :func:`merge` for shared subscriptions), :mod:`.client` (MQTT),
:mod:`.render` (the lines ``edgectl verify`` prints).
"""

from __future__ import annotations

from edgesdk.consumer.client import Consumer, ConsumerStats, parse_broker, tls_context
from edgesdk.consumer.core import Inspector
from edgesdk.consumer.outcomes import (
    REJECT_REASONS,
    ConsumerAnomaly,
    KeyLearned,
    Outcome,
    Rejected,
    RejectReason,
    Repeated,
    Summary,
    Verified,
)
from edgesdk.consumer.tracking import DedupeTracker, LocalTracker, MergeReport, Tracker, merge
from edgesdk.consumer.trust import SiteTrust, load_certificates

__all__ = [
    "REJECT_REASONS",
    "Consumer",
    "ConsumerAnomaly",
    "ConsumerStats",
    "DedupeTracker",
    "Inspector",
    "KeyLearned",
    "LocalTracker",
    "MergeReport",
    "Outcome",
    "RejectReason",
    "Rejected",
    "Repeated",
    "SiteTrust",
    "Summary",
    "Tracker",
    "Verified",
    "load_certificates",
    "merge",
    "parse_broker",
    "tls_context",
]
