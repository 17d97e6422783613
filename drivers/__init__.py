"""Bundled device drivers, one package each, registered in the ``edgesdk.drivers`` group.

Drivers are imported only when asked for (``edgesdk.driver.load(name)``), so a missing
optional dependency of one driver never breaks another.
"""

__all__: list[str] = []
