"""Provisioning: what an installer runs to bring a site's gateway into service.

``edgectl provision`` (:mod:`provisioning.cli`) creates the site CA, the gateway's signing
and TLS identities, broker and operator certificates, edits the device list of
``gateway.toml``, scans buses for devices, checks a finished installation end to end,
and moves configurations to offline gateways as signed bundles.
"""

from __future__ import annotations

__all__: list[str] = []
