"""The reference app, loaded once: its module declares tables, which a second load would redefine."""

from __future__ import annotations

import pytest

from ringfence.app import App
from ringfence.loader import load_app
from tests.support.serve import CONTACTS_APP


@pytest.fixture(scope="session")
def contacts_app() -> App:
    return load_app(CONTACTS_APP)
