"""The gateway's life-safety rules: PASS man-down, low air, heart rate, heat, lost contact,
cross-checked fire and device supervision (docs/rules.md).

The rules are sans-I/O and clock-free: :class:`RuleEngine` takes readings and driver events
with an explicit ``now`` and returns the rule events to forward (``source="gateway"``).
"""

from gateway.rules.engine import RuleEngine

__all__ = ["RuleEngine"]
