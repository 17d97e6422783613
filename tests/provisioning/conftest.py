"""Fixtures for the provisioning CLI tests: sites built once per session through the CLI.

``site_template`` is site ``hq`` with gateway ``gw1``; ``rival_template`` uses the same names
under another CA (a wrong CA that looks right); ``west_template`` is another site. Tests that
change files take a copy (``site``, or :func:`copy_site`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.provisioning.cli import CA_PASS, make_site

Site = dict[str, Path]


def copy_site(template: Site, dest: Path) -> Site:
    """A private copy of a site's CA and gateway directories, modes kept."""
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for key in ("ca", "gw"):
        target = dest / template[key].name
        shutil.copytree(template[key], target)
        target.chmod(0o700)
        out[key] = target
    out["config"] = out["gw"] / "gateway.toml"
    return out


@pytest.fixture(scope="session")
def site_template(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("site-hq"))


@pytest.fixture(scope="session")
def rival_template(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("site-rival"), site="hq", gw="gw1")


@pytest.fixture(scope="session")
def west_template(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("site-west"), site="west", gw="gw1")


@pytest.fixture
def site(site_template: Site, tmp_path: Path) -> Site:
    """A private copy of site hq (CA dir and gateway dir)."""
    return copy_site(site_template, tmp_path / "hq")


@pytest.fixture
def ca_pass_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CA passphrase in this process's environment, for library-made test certs."""
    monkeypatch.setenv("EDGE_CA_PASS", CA_PASS)
