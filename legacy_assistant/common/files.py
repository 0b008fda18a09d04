"""Writing an output file whole or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO


def readable_path(path: str | Path) -> str:
    """``path`` as text a manifest or a JSON report can hold: its bytes read as UTF-8, as a UTF-8
    system shows the name, whatever the locale (under ``LC_ALL=C`` with UTF-8 mode off Python holds
    ``é`` as two surrogates, which UTF-8 cannot encode); bytes that are not UTF-8 as ``\\xe9``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def private_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder itself (not a link to one) that this user owns and no other
    user can write in. A folder made under a name others can see, in a folder everyone writes in
    (``/dev/shm``, ``/tmp``), may be made at that name by another user once it is removed: that
    user could plant links in it for this user's processes to write through."""
    try:
        status = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(status.st_mode) and status.st_uid == os.geteuid() and not status.st_mode & 0o022


def sticky_keeps(owner: int, folder: os.stat_result) -> bool:
    """Whether this user may not remove a file ``owner`` owns in the folder ``folder`` describes:
    in a sticky folder (``/tmp``) only the file's owner, the folder's owner and root may, whatever
    the folder's write permissions (the kernel's test is on the effective user)."""
    user = os.geteuid()
    return bool(folder.st_mode & stat.S_ISVTX) and user not in (0, owner, folder.st_uid)


@contextlib.contextmanager
def naming(path: str | Path, instead_of: str | Path | None = None) -> Iterator[None]:
    """An ``OSError`` raised without a file name (a full disk found by a ``write`` or a ``close``
    says only ``[Errno 28] No space left on device``) names ``path``; so does one that names
    ``instead_of`` alone, a temporary file written for ``path`` and removed by the time the
    error is read."""
    try:
        yield
    except OSError as exc:
        unnamed = exc.filename is None
        temporary = instead_of is not None and exc.filename2 is None and _same_name(exc.filename, instead_of)
        if (unnamed or temporary) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def _same_name(name: object, path: str | Path) -> bool:
    """Whether ``name`` (an ``OSError``'s file name: text, bytes or a path) is ``path``."""
    try:
        return os.fsdecode(name) == os.fsdecode(path)  # type: ignore[arg-type]
    except TypeError:  # a descriptor's number, say
        return False


def write_text_atomically(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, renamed over it.

    A reader sees the old file or the new one, never a part; a failed write (a full disk, an
    interrupt) leaves the old file as it was and no temporary file behind.
    """
    return write_atomically(path, lambda stream: stream.write(text.encode(encoding)))


def write_atomically(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Have ``write(stream)`` write ``path``'s bytes to a temporary file in the same folder,
    renamed over ``path`` once it is whole (see :func:`write_text_atomically`); two commands
    writing one file at once leave one's file or the other's, never a mix. A device or a pipe
    (``--out /dev/stdout``, a FIFO a reader waits on) is written in place, not replaced: a
    rename over it would put a regular file where the device or the link to it was."""
    target = Path(path)
    descriptor = own_descriptor(target)
    if descriptor is not None:  # /dev/stdout redirected to a file: after what was printed there
        _flush_standard_streams()
        with naming(target), os.fdopen(os.dup(descriptor), "wb") as stream:
            write(stream)
        return target
    if is_device_or_pipe(target):
        with naming(target), open(target, "wb") as stream:
            write(stream)
        return target
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with naming(target), os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        _give_mode(temporary, target)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


class NotWritten(Exception):
    """Raised by a write of :func:`write_together` that gives up on its file (a figure
    matplotlib cannot draw) while the other files are still to be written."""


def write_together(writes: Sequence[tuple[str | Path, Callable[[Path], object]]]) -> list[Path]:
    """Write several files that belong together (a report and its figures): each
    ``write(path)`` writes a temporary sibling of its file first, and only once all of them are
    whole are they renamed into place, in the order given (the report last, so that a report on
    disk means its figures are there too). A failed or interrupted write (Ctrl-C while a figure
    is drawn) leaves every old file as it was and no temporary file behind, nor a folder it made
    for them. A device or a pipe (``/dev/null``) is written in its turn, not replaced.

    A write that raises :class:`NotWritten` leaves its file out and the others are written: an
    older file at its path is removed (it belongs to another run's report). Returns the paths
    written."""
    staged: list[tuple[Path | None, Path, Callable[[Path], object]]] = []
    skipped: list[Path] = []
    made: list[Path] = []
    try:
        for path, write in writes:
            made += make_parents(Path(path))
            target = Path(path)
            if (target.exists() and not target.is_file()) or is_device_or_pipe(target):
                staged.append((None, target, write))
                continue
            handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(handle)
            staged.append((Path(name), target, write))
            try:
                with naming(target, instead_of=name):  # the temporary file is gone when the error is read
                    write(Path(name))
            except NotWritten:
                staged.pop()
                Path(name).unlink(missing_ok=True)
                skipped.append(target)
        for temporary, target, _ in staged:
            if temporary is not None:
                _give_mode(temporary, target)
        while staged:
            temporary, target, write = staged[0]
            if temporary is None:
                try:
                    with naming(target):
                        write(target)
                except NotWritten:
                    skipped.append(target)  # a device: nothing of it is removed (is_file, below)
            else:
                os.replace(temporary, target)
            staged.pop(0)
        for target in skipped:
            if target.is_file():
                target.unlink()
    except BaseException:
        for temporary, _, _ in staged:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):  # not empty (another writer's file): it stays
                folder.rmdir()
        raise
    return [Path(path) for path, _ in writes if Path(path) not in skipped]


def make_parents(path: Path) -> list[Path]:
    """Make the missing folders above ``path``, as ``mkdir -p`` would; returns the ones it made,
    outermost first, for a caller that removes them again when its write fails."""
    missing = [parent for parent in reversed(path.parents) if not parent.is_dir()]
    made: list[Path] = []
    try:
        for folder in missing:
            try:
                folder.mkdir()
            except FileExistsError:
                if not folder.is_dir():  # a file in the way: mkdir -p's error
                    raise
                continue  # made meanwhile by someone else: theirs, not to remove
            made.append(folder)
    except BaseException:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return made


def sync_tree(root: str | Path) -> None:
    """Flush every file under ``root`` and every folder (``root`` too) to the disk, deepest first,
    so that a folder renamed into place after this holds whole files after a power cut: a rename
    can reach the disk before the data it names."""
    root = Path(root)
    entries = sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True)
    for path in entries:
        if path.is_file() and not path.is_symlink():
            sync_path(path)
    for folder in [path for path in entries if path.is_dir() and not path.is_symlink()] + [root]:
        sync_folder(folder)


def sync_path(path: str | Path) -> None:
    """``fsync`` one file: its data and size on the disk."""
    # Windows flushes a file only through a handle that may write it (FlushFileBuffers): a
    # read-only one fails with EBADF there
    descriptor = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_folder(path: str | Path) -> None:
    """``fsync`` a folder's entries (a rename in it, a file made there), where the file system
    can: some refuse it for folders (EINVAL), and there is nothing more to do then. Windows
    cannot open a folder as a file at all (EACCES): nothing to do there either."""
    if os.name == "nt":
        return
    try:
        sync_path(path)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise


def is_device_or_pipe(path: str | Path) -> bool:
    """Whether ``path`` is, or links to, something that exists and is neither a regular file nor
    a folder: a device or a pipe (``/dev/stdout``, ``/dev/null``, a FIFO), written in place; or a
    name of a file this process has open (``/dev/stdout`` redirected to a file, ``/dev/fd/3``),
    written through that descriptor."""
    if own_descriptor(path) is not None:
        return True
    return os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path)


def own_descriptor(path: str | Path) -> int | None:
    """The descriptor of this process that ``path`` names, directly or through links
    (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``), or None; one that is not open too
    (``>&-``), which a file opened later may take. Such a name of a regular file leads to the
    file itself: a rename over it replaced the link (as root, /dev/stdout in /dev) instead of
    writing where the descriptor points."""
    own = set()
    for folder in ("/proc/self/fd", "/proc/thread-self/fd", "/dev/fd"):  # /dev/fd: a link to /proc/self/fd on Linux
        with contextlib.suppress(OSError):
            own.add(os.path.realpath(folder, strict=True))
    if not own:  # Windows: no such names
        return None
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's limit on links in a row
        name = os.path.basename(current)
        if name.isascii() and name.isdigit() and os.path.realpath(os.path.dirname(current)) in own:
            return int(name)  # open or not (``>&-``): see open_for_writing
        try:
            current = os.path.join(os.path.dirname(current), os.readlink(current))
        except (OSError, ValueError):  # not a link (or no such file): no descriptor's name
            return None
    return None


def names_standard_output(path: str | Path) -> bool:
    """Whether ``path`` names this process's standard output (``--out /dev/stdout``), where the
    report then goes alone, and the lines a command prints about it go to standard error."""
    try:
        return sys.stdout is not None and own_descriptor(path) == sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a stream with no descriptor (tests capture it)
        return False


# The stream Python opens at start-up for each standard descriptor; None where it was closed.
_STANDARD_STREAMS = {0: "__stdin__", 1: "__stdout__", 2: "__stderr__"}


def open_for_writing(descriptor: int) -> bool:
    """Whether ``descriptor`` is open in this process, and for writing (``/dev/stdin`` of a
    file is open for reading only). A standard descriptor that was closed when the process
    started (``>&-``) counts as closed while it leads to /dev/null, where the command has pointed
    it since; one the process has opened a file on since (a daemon's log) is open."""
    if (
        descriptor in _STANDARD_STREAMS
        and getattr(sys, _STANDARD_STREAMS[descriptor]) is None
        and _leads_to_null(descriptor)
    ):
        return False  # Python found it closed at start-up and made no stream for it
    try:
        import fcntl
    except ImportError:  # Windows: no /proc/self/fd either, so no descriptor is named
        return False
    try:
        mode = fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        return False
    return mode in (os.O_WRONLY, os.O_RDWR)


def _leads_to_null(descriptor: int) -> bool:
    """Whether ``descriptor`` is open on /dev/null (an error reading either: no)."""
    try:
        found, null = os.fstat(descriptor), os.stat(os.devnull)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (null.st_dev, null.st_ino)


def _flush_standard_streams() -> None:
    """Flush Python's standard streams, so that what they hold reaches the file before what is
    written through a descriptor: not only the stream that writes to it, for another
    descriptor may lead to the same open file (``--out /dev/stderr > log 2>&1``, where the
    summary printed to standard output waited in its buffer and came after the report)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):  # None, closed, or a reader gone
            if stream is not None:
                stream.flush()


def nearest_existing(path: str | Path) -> Path:
    """``path`` when it exists, else its nearest parent that does (a folder the path would be
    made in, when it is one); ``/`` at worst."""
    path = Path(path)
    # os.path.exists, not Path.exists: False, not OSError, for a name too long
    return next((p for p in (path, *path.parents) if os.path.exists(p)), Path(path.anchor or "/"))


def can_make_or_write_in(folder: str | Path) -> bool:
    """Whether this user can write in ``folder``, or make it in the nearest folder that exists."""
    existing = nearest_existing(folder)
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def blocking_file(path: str | Path) -> Path | None:
    """The nearest existing folder above ``path`` when it is a file instead, so that nothing can
    be written at ``path``; ``None`` otherwise."""
    nearest = next((parent for parent in Path(path).parents if parent.exists()), None)
    return nearest if nearest is not None and not nearest.is_dir() else None


def _give_mode(temporary: str | Path, target: Path) -> None:
    """Give the file that will replace ``target`` the permissions ``target`` has, or those of a
    new file (mkstemp makes it private)."""
    if target.exists():  # keep the permissions a replaced file had
        os.chmod(temporary, target.stat().st_mode & 0o7777)
    else:
        os.chmod(temporary, 0o666 & ~_umask())


def _umask() -> int:
    """The process's umask, read without setting it (os.umask would change it for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022
