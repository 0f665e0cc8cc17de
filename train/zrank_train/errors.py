"""The one error type that the CLI turns into a single stderr line and exit status 2."""


class InputError(Exception):
    """Bad input (a file, a folder or an option): reported as one line, exit status 2, no traceback."""
