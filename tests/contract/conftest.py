import pytest

from ehis.security.pki import init_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return init_pki(tmp_path_factory.mktemp("contract") / "pki", {"din": "Daxili İşlər Nazirliyi", "vergiler": "Vergilər Nazirliyi"})
