"""The pytest plugin: every daemon of the registry as pytest fixtures
(registered through the ``pytest11`` entry point; see doc/source/user/pytest.rst)."""
