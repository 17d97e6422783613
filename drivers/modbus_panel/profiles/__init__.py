"""Bundled panel register maps, one TOML file per panel family (read with importlib.resources).

See ``docs/profiles.md`` for the format and how to add a profile.
"""

__all__: list[str] = []
