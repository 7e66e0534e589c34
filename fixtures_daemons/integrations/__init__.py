"""What finds daemons by name and drives them: the registry, the CLI's
options and the ``fixtures-daemons`` command. Imports every layer below.
"""
