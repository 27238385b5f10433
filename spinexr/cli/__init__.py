"""Command-line entry points: ``python -m spinexr.cli.<command> --help``.

Each module parses its arguments and calls a package function; ``tools/<command>.py`` in a checkout
is a thin door into the same ``main``. Importing this package has no side effects.
"""
