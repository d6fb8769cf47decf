"""The one error type every command reports as a single line (tagger.cli.run_command)."""


class UserError(Exception):
    """Bad input or setup the user can fix: shown as one line, the traceback only with --debug."""
