"""Test-wide settings: hermetic data cache, headless plotting, few threads (CI has 2 cores)."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session", autouse=True)
def _hermetic_data_home(tmp_path_factory):
    """The embedded default datasets are generated into a per-session cache, never ~/.cache."""
    home = tmp_path_factory.mktemp("wsp-data-home")
    old = os.environ.get("WSP_DATA_HOME")
    os.environ["WSP_DATA_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("WSP_DATA_HOME", None)
    else:
        os.environ["WSP_DATA_HOME"] = old
