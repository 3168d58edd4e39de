"""The project's root error. Every error ``genre`` raises on purpose subclasses
:class:`GenreError` and carries a message meant for users, so the CLI prints it as one line
and anything else (a bug) keeps its traceback. Errors that were ``ValueError`` or
``KeyError`` before keep that base, so existing ``except`` clauses still catch them.

This module imports nothing: the CLI reads it without loading Keras."""


class GenreError(Exception):
    """Something the user can act on: a bad setting, an unusable input, a refused action."""


class TrainingCancelled(GenreError):
    """The job was asked to stop (SIGTERM/SIGINT); its run can be resumed."""
