"""The export tests use the ecology tests' atlas of real imagery and recordings."""

from tests.engine.ecology.conftest import eco_bundle, real_atlas, real_audio  # noqa: F401 - fixtures
