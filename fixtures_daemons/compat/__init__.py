"""Compatibility plugins: suites written for other pytest tools, run on
this library unchanged.

Each module here is an opt-in pytest plugin, enabled with ``-p`` or
``pytest_plugins``: :mod:`fixtures_daemons.compat.xprocess` for
pytest-xprocess users, :mod:`fixtures_daemons.compat.services` for
pytest-services users. Importing this package imports nothing else.
"""
