import logging
import os
import sys

from .cli import main

code = main()
# Everything the CLI writes is on disk by now (atomic renames, lock released). Skip the
# interpreter's teardown: destroying a tf.data iterator whose generator thread is waiting for
# the GIL deadlocks there (seen after a cancel mid-epoch), and the job would never end.
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
