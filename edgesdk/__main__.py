"""``python -m edgesdk`` is ``edgectl``."""

from edgesdk.cli import main

main()
