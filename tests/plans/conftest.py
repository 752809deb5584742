import pytest

from tests.render.conftest import make_config


@pytest.fixture
def cfg():
    return make_config()
