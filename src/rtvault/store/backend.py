"""Where store files live: the small interface the engine uses, and its directory implementation.

Keys are `/`-separated relative names (`data/ab/ab12...`, `snapshots/2026....json`). Every file is written
once, atomically: it is staged, fsynced and renamed into place, so a reader sees a whole file or none. The S3
backend (store/s3.py) implements the same methods (staging to a local temporary file, then one PUT), and
tests/store/test_backend_conformance.py holds both to the same behaviour.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from rtvault.errors import StoreError, os_failure

TMP_DIR = "tmp"
# Owner-only on a directory, whatever the umask: an encrypted store's wrapped master key, and the catalog's own
# backups (password hashes: store/catalog_backups.py).
PRIVATE_DIRS = ("keys", "catalog")


def is_private(key: str) -> bool:
    return key.split("/", 1)[0] in PRIVATE_DIRS


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc if hasattr(libc, "syncfs") else None
    except OSError:
        return None


_LIBC = _libc()  # syncfs(2): flush one file system, not every process's writes as sync(2) does


def sync_filesystem(path: Path) -> None:
    """Make everything written under `path`'s file system durable (syncfs, else sync)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _LIBC is None or _LIBC.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class Staged(Protocol):
    """A file being written; `commit` puts it at its key atomically, `discard` forgets it."""

    file: BinaryIO

    def commit(self, key: str, *, durable: bool = False) -> bool: ...

    def discard(self) -> None: ...


class Backend(Protocol):
    location: str

    def stage(self) -> Staged: ...

    def put(self, key: str, data: bytes, *, durable: bool = False) -> None: ...

    def barrier(self) -> None: ...

    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def delete(self, key: str) -> None: ...

    def create_exclusive(self, key: str, data: bytes) -> bool: ...

    def replace(self, key: str, data: bytes) -> None: ...

    def modified(self, key: str) -> float: ...

    def clean_staging(self, older_than_s: float, now: float) -> int: ...


class GuardedFile:
    """A staged file whose write errors are store errors: a full or read-only store must never pass for an
    unreadable source file (the backup reads one while writing the other) nor for a bug."""

    def __init__(self, file: BinaryIO, where: str, store: str) -> None:
        self._file, self._where, self._store = file, where, store

    def _failed(self, error: OSError) -> StoreError:
        return os_failure(error, self._where, store=self._store)  # type: ignore[return-value]

    def write(self, data: bytes) -> int:
        try:
            return self._file.write(data)
        except OSError as error:
            raise self._failed(error) from None

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as error:
            raise self._failed(error) from None

    def __getattr__(self, name: str) -> object:  # fileno, seek, tell, close, closed, read ...
        return getattr(self._file, name)


def os_errors(doing: str) -> Callable:
    """Turn an OSError raised by a DirectoryBackend method on `key` into one StoreError sentence (exit 8)
    naming the file, the store and what to do (free space, remount read-write, grant access)."""

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def guarded(self: DirectoryBackend, key: str, *args: object, **kwargs: object) -> object:
            try:
                return method(self, key, *args, **kwargs)
            except OSError as error:
                raise os_failure(error, self.root / key, store=self.location, doing=doing) from None

        return guarded

    return decorate


def process_alive(pid: int) -> bool:
    """Whether a process of this host still runs (locks and staged files name their writer's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_parent(path: Path, private: bool) -> Path | None:
    """Create `path`'s folder when missing; returns the folder whose new entry must be made durable."""
    made = None
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = path.parent.parent
    if private and path.parent.stat().st_mode & 0o777 != 0o700:  # made now, or by an older version
        os.chmod(path.parent, 0o700)
    return made


class _StagedFile:
    def __init__(self, backend: DirectoryBackend, private: bool = False) -> None:
        self.backend = backend
        self.private = private
        self.path = backend.root / TMP_DIR / f"{os.getpid()}-{secrets.token_hex(8)}"
        try:
            if private:  # owner-only from its first byte, not only once renamed into keys/
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.fchmod(fd, 0o600)
                raw: BinaryIO = os.fdopen(fd, "wb")
            else:
                raw = open(self.path, "xb")  # noqa: SIM115 - closed by commit or discard
        except OSError as error:
            raise os_failure(error, self.path, store=backend.location) from None
        self.file: BinaryIO = GuardedFile(raw, str(self.path), backend.location)  # type: ignore[assignment]

    def commit(self, key: str, *, durable: bool = False) -> bool:
        """Move into place, content fsynced first, so that a final name never holds partial bytes; False when
        the key already existed (content-addressed: same bytes). The rename itself is made durable by
        `durable` or, for many files at once, by the backend's `barrier()`. A failure (full disk, read-only
        store) removes the staged file and raises a StoreError naming the path."""
        target = self.backend.path_of(key)
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            if target.exists():
                self.path.unlink()
                return False
            made = _make_parent(target, self.private)
            os.replace(self.path, target)
            if durable:
                _fsync_dir(target.parent)
                if made is not None:
                    _fsync_dir(made)
            else:
                self.backend.renamed(target.parent, made)
            return True
        except OSError as error:
            self.discard()
            raise os_failure(error, target, store=self.backend.location) from None
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # the bytes are thrown away: a failed flush of them changes nothing
            self.file.close()
        with contextlib.suppress(OSError):  # a read-only store: nothing could have been staged there anyway
            self.path.unlink(missing_ok=True)


class DirectoryBackend:
    """A store on a local or NAS-mounted directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self._dirty: set[Path] = set()  # folders holding renames not yet durable (set.add is thread-safe)

    def renamed(self, folder: Path, made: Path | None = None) -> None:
        """A file was renamed into `folder` (which was created in `made`): `barrier()` makes it durable."""
        self._dirty.add(folder)
        if made is not None:
            self._dirty.add(made)

    def path_of(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"invalid store key {key!r}")
        return self.root / key

    def stage(self, private: bool = False) -> Staged:
        try:
            (self.root / TMP_DIR).mkdir(exist_ok=True)
        except OSError as error:
            raise os_failure(error, self.root / TMP_DIR, store=self.location) from None
        return _StagedFile(self, private)

    def put(self, key: str, data: bytes, *, durable: bool = False) -> None:
        staged = self.stage(is_private(key))
        try:
            staged.file.write(data)
        except BaseException:
            staged.discard()
            raise
        staged.commit(key, durable=durable)

    def barrier(self) -> None:
        """Make every rename this run made durable: one fsync of each folder it renamed files into (their
        content was fsynced when staged), and nothing at all when it renamed nothing. Never a sync of the
        whole file system, which would wait for every other program's writes too."""
        while self._dirty:
            folder = self._dirty.pop()
            try:
                _fsync_dir(folder)
            except FileNotFoundError:
                continue  # removed since (a prune): nothing of it to keep
            except OSError as error:
                self._dirty.add(folder)
                raise os_failure(error, folder, store=self.location, doing="sync") from None

    @os_errors("read")
    def get(self, key: str) -> bytes:
        try:
            return self.path_of(key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.location}: {key} is missing") from None

    @os_errors("read")
    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path_of(key), "rb")
        except FileNotFoundError:
            raise StoreError(f"{self.location}: {key} is missing") from None

    @os_errors("read")
    def exists(self, key: str) -> bool:
        return self.path_of(key).exists()

    @os_errors("read")
    def size(self, key: str) -> int:
        try:
            return self.path_of(key).stat().st_size
        except FileNotFoundError:
            raise StoreError(f"{self.location}: {key} is missing") from None

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under a folder-like prefix (`data/`, `snapshots/`), in no particular order."""
        base = self.path_of(prefix.rstrip("/"))
        if not base.is_dir():
            return

        def unlistable(error: OSError) -> None:  # os.walk would skip a folder it cannot read, in silence
            raise os_failure(error, error.filename or base, store=self.location, doing="list") from None

        for dirpath, _dirs, files in os.walk(base, onerror=unlistable):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                yield f"{rel}/{name}"

    @os_errors("delete")
    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    @os_errors("read")
    def modified(self, key: str) -> float:
        """Last modification time (seconds since the epoch); StoreError when missing."""
        try:
            return self.path_of(key).stat().st_mtime
        except FileNotFoundError:
            raise StoreError(f"{self.location}: {key} is missing") from None

    @os_errors("write")
    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Write a small file only if none is there (locks); False when one already exists."""
        path, private = self.path_of(key), is_private(key)
        _make_parent(path, private)
        # Written whole under a temporary name, then published with link(), which never overwrites (atomic on
        # local file systems and NFS): a full disk or a kill while writing leaves no empty or partial lock.
        staged = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}"
        try:
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
            try:
                if private:
                    os.fchmod(fd, 0o600)
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(staged, path)
            except FileExistsError:
                return False
        finally:
            with contextlib.suppress(OSError):  # a read-only store refused the write: that error is the one told
                staged.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return True

    @os_errors("write")
    def replace(self, key: str, data: bytes) -> None:
        """Atomically overwrite a small mutable file (the lock's lease renewal, a key file)."""
        path, private = self.path_of(key), is_private(key)
        staged = self.stage(private)
        try:
            staged.file.write(data)
            staged.file.flush()
            os.fsync(staged.file.fileno())
            staged.file.close()
            if private:
                _make_parent(path, private)
            os.replace(staged.path, path)
            self.renamed(path.parent)  # the next barrier() makes the new content's name durable
        except BaseException:
            staged.discard()
            raise

    def clean_staging(self, older_than_s: float, now: float) -> int:
        """Remove staged files left by killed runs; call only while holding the writer lock. A file staged by a
        process still alive on this host (a verify writing its state) is left alone, and so is anything that
        is not a file (left there by hand)."""
        removed = 0
        tmp = self.root / TMP_DIR
        try:
            entries = list(os.scandir(tmp)) if tmp.is_dir() else []
            for entry in entries:
                pid = entry.name.partition("-")[0]
                mine = pid == str(os.getpid())  # this run's own leftovers: the writer cleans them
                if not entry.is_file(follow_symlinks=False) or (pid.isdigit() and not mine and process_alive(int(pid))):
                    continue
                if now - entry.stat(follow_symlinks=False).st_mtime > older_than_s:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        except FileNotFoundError:
            pass  # removed meanwhile by its own process
        except OSError as error:
            raise os_failure(error, error.filename or tmp, store=self.location, doing="clean") from None
        return removed


class ReadOnlyBackend:
    """A store this host only reads (`read_only = true`: the primary, seen from the host that keeps a protected
    copy): every read goes to the store, every write is refused with one StoreError naming the store, before
    anything is sent. The real protection is the access this host is given (a read-only mount, S3 keys that
    can only read); this keeps rtvault itself from ever trying."""

    def __init__(self, inner: Backend, name: str) -> None:
        self.inner, self.name = inner, name
        self.location = inner.location

    def _refused(self, doing: str, key: str) -> StoreError:
        return StoreError(f"store {self.name} ({self.location}) is read-only on this host (read_only = true): "
                          f"cannot {doing} {key}; the host that owns it writes it (run the command there)")

    def stage(self) -> Staged:
        raise self._refused("write", "a file")

    def put(self, key: str, data: bytes, *, durable: bool = False) -> None:
        raise self._refused("write", key)

    def barrier(self) -> None:
        """Nothing was written."""

    def delete(self, key: str) -> None:
        raise self._refused("delete", key)

    def create_exclusive(self, key: str, data: bytes) -> bool:
        raise self._refused("write", key)

    def replace(self, key: str, data: bytes) -> None:
        raise self._refused("rewrite", key)

    def clean_staging(self, older_than_s: float, now: float) -> int:
        return 0  # not this host's staging

    def __getattr__(self, name: str) -> object:  # get, open, exists, size, list, modified, read_range, root...
        return getattr(self.inner, name)
