"""What every command shares: logging, and bad input reported as one clear line."""

import logging
import sys


class UserError(Exception):
    """Bad input or setup the user can fix: shown as one line, the traceback only with --debug."""


def run_command(main) -> None:
    """Call main(argv) with `--debug` taken out of argv."""
    argv = sys.argv[1:]
    debug = "--debug" in argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        main([arg for arg in argv if arg != "--debug"])
    except UserError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
