"""The one exception type that means "the user's input is wrong": the CLI prints it on one line, exit 2."""


class UsageError(Exception):
    """Bad input: a file, option or name the user can fix. The message names it and what was expected."""
