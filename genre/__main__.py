"""``python -m genre`` and the ``genre`` command (pyproject's console script calls :func:`run`)."""

import logging
import os
import sys
import traceback
from typing import NoReturn


def run() -> NoReturn:
    """Run the CLI, then leave without the interpreter's teardown."""
    from .cli import main

    try:
        code = main()
    except SystemExit:
        raise  # argparse's usage errors and --help: nothing is loaded yet, a normal exit is safe
    except BaseException:  # a bug: the CLI lets it through so that its traceback shows
        traceback.print_exc()
        code = 1
    # Everything the CLI writes is on disk by now (atomic renames, lock released). Skip the
    # interpreter's teardown: destroying a tf.data iterator whose generator thread is waiting for
    # the GIL deadlocks there (seen after a cancel mid-epoch), and the job would never end.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
