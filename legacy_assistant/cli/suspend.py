"""Ctrl-Z and ``fg`` at the chat's prompt: the line being typed comes back as it was, editable.

Python's readline module turns off GNU readline's own signal handling, so nothing put the
terminal back in readline's mode when a stopped chat was resumed: the shell's ``fg`` left it in
the shell's mode (each key echoed by the terminal, then again by readline; an arrow key showed
as ``^[[D`` and went into the message), and the prompt with the keys typed before the stop was
not drawn again. :func:`stop_and_resume_kept` does what readline's handler would: the terminal's
mode from before the chat while it is stopped, readline's again when it goes on, and the line
redrawn.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def stop_and_resume_kept() -> Iterator[None]:
    """Within the block, input() waiting for a line, Ctrl-Z (SIGTSTP) stops the process with the
    terminal in the mode it had when the block began, and the process goes on with the terminal
    as it was at the stop and readline's line drawn again. The block is to hold no more than
    input(): its handler runs only as Python code does, so a stop asked for within a long call
    into C code (TensorFlow's) would wait for the call's end. Only
    on a system with job control (no termios, no SIGTSTP: nothing done), in the main thread, with
    standard input a terminal and SIGTSTP at its default action (an ignored one stays ignored);
    the old handler comes back at the end."""
    try:
        import termios
    except ImportError:  # Windows
        yield
        return
    stdin = sys.stdin
    if (
        not hasattr(signal, "SIGTSTP")
        or threading.current_thread() is not threading.main_thread()
        or stdin is None
        or not stdin.isatty()
        or signal.getsignal(signal.SIGTSTP) != signal.SIG_DFL
    ):
        yield
        return
    try:
        descriptor = stdin.fileno()
        before = termios.tcgetattr(descriptor)
    except (OSError, ValueError, termios.error):  # no file descriptor (a stand-in stream), not a terminal's
        yield
        return

    def stop(signum: int, frame: object) -> None:
        try:
            at_stop = termios.tcgetattr(descriptor)
            termios.tcsetattr(descriptor, termios.TCSADRAIN, before)
        except termios.error:
            at_stop = None
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stopped here until SIGCONT (fg, bg)
        signal.signal(signal.SIGTSTP, stop)
        if at_stop is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(descriptor, termios.TCSADRAIN, at_stop)
        _redraw_line()

    signal.signal(signal.SIGTSTP, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)


def _redraw_line() -> None:
    """Have readline draw its prompt and line again, where the cursor is (after the shell's
    ``fg`` line): GNU readline's and libedit's ``rl_forced_update_display``, which the readline
    module does not offer; without it (another line editor), the prompt's line is left as is."""
    try:
        import readline

        library = ctypes.CDLL(readline.__file__)
        library.rl_forced_update_display()
    except (ImportError, OSError, AttributeError) as exc:
        logger.debug("cannot redraw the line after a stop: %s", exc)
