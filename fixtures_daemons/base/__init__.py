"""The daemon base: what every daemon shares.

The endpoint, the admin shape, namespaces, origins, the template cache,
named daemons and their holder, DaemonFixture, the SQL base and the
testresources managers. Imports the process layer only.
"""
