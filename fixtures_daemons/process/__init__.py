"""The process layer: any program as a fixture, never leaked.

It knows nothing of daemons: spawning, readiness probes, stopping whole
process trees, the watchdog, ports, users, private temp dirs.
"""
