"""Classify live microphone windows on a dedicated thread, the moment each completes.

The page used to classify a take's new windows itself, when its twice-a-second refresh came
round. Under load that refresh waits behind other sessions' work, and the window waited with
it. Here the frame callback wakes :class:`LiveWorker` as soon as a window is complete; the
worker classifies it with the same :meth:`Classifier.predict_windows` call, so the
probabilities are the ones the page computed before, and the page only draws what is done.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from typing import TYPE_CHECKING

from .live import LiveAudio, LiveTally

if TYPE_CHECKING:
    from .prediction import Classifier

log = logging.getLogger(__name__)


class LiveWorker:
    """One daemon thread that classifies the windows of every live take it follows, in the
    order they complete. Started on first use; :meth:`close` ends it (tests)."""

    def __init__(self, name: str = "genre-live-windows"):
        self.name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def follow(self, audio: LiveAudio, tally: LiveTally, classifier: Classifier) -> None:
        """Classify ``audio``'s windows into ``tally`` with ``classifier`` from now on, as each
        completes, and any already waiting. Calling it again rebinds (another model)."""
        # The listener lives on the buffer: a weak reference back to it makes no cycle, so a
        # closed session's buffer (up to 50 MB) goes as soon as the session does.
        follower = weakref.ref(audio)

        def listener() -> None:
            if (buffer := follower()) is not None:
                self._submit(buffer, tally, classifier)

        audio.listener = listener
        self._submit(audio, tally, classifier)

    def _submit(self, audio: LiveAudio, tally: LiveTally, classifier: Classifier) -> None:
        # Runs on aiortc's thread for every completed window: a queue put, nothing more.
        self._ensure_started()
        self._jobs.put((audio, tally, classifier))

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._starting:
                if self._thread is None:
                    thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    thread.start()
                    self._thread = thread

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._classify(*job)
            del job  # hold no session's buffer while waiting for the next window

    @staticmethod
    def _classify(audio: LiveAudio, tally: LiveTally, classifier: Classifier) -> None:
        try:
            # A job may find nothing new (an earlier one took its window): update pops each
            # window exactly once.
            tally.update(classifier, audio)
        except Exception as error:
            log.exception("classifying a live window")
            tally.fail(f"{type(error).__name__}: {error}")

    def close(self) -> None:
        """Finish the queued windows and end the thread."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None
