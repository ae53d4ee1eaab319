"""Run a stage script with faults injected through Python's audit hooks (PEP 578).

    python tests/faultrun.py SCRIPT [ARGS...]      (settings come from the environment)

Audit hooks see every file the process opens for writing, every rename,
symlink, mkdir, removal and copy, before it happens, without changing the
code under test. The faults, all confined to paths under DRS_FAULT_WATCH:

  DRS_FAULT_LOG=FILE         append one line per mutating event (event and path), to list the kill points
  DRS_FAULT_KILL_AT=N        SIGKILL this process just before its Nth mutating event (a real, uncatchable kill)
  DRS_FAULT_STOP_AT=N        SIGSTOP this process just before its Nth mutating event (the test SIGCONTs it)
  DRS_FAULT_READONLY=DIR     every mutation under DIR fails with EROFS, as on a read-only file system
  DRS_FAULT_NOSPACE=DIR      os.fsync of a file under DIR fails with ENOSPC, as when the disk fills up
  DRS_FAULT_GROW=FILE        every time FILE is opened for reading, a line is appended to it first
                             (a file still being written while it is read)

A mkdir of a folder that already exists changes nothing, so it is not counted.
"""

from __future__ import annotations

import errno
import os
import runpy
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTATING = {
    "os.rename",
    "os.symlink",
    "os.remove",
    "os.rmdir",
    "os.mkdir",
    "os.link",
    "os.chmod",
    "os.truncate",
    "shutil.copyfile",
    "shutil.rmtree",
    "sqlite3.connect",
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _under(path: object, folder: str) -> bool:
    if isinstance(path, (bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(path))
    if not isinstance(path, str) or not folder:
        return False
    return os.path.abspath(path).startswith(folder.rstrip("/") + "/") or os.path.abspath(path) == folder


def mutation_of(event: str, args: tuple) -> str | None:
    """The path an event changes, or None for events that change nothing."""
    if event == "open":
        path, mode, flags = args
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & WRITE_FLAGS)
        return path if writes and not isinstance(path, int) else None
    if event == "os.mkdir":
        return None if os.path.isdir(args[0]) else args[0]
    if event in ("os.rename", "os.link"):
        return args[0]
    if event == "os.symlink":
        return args[1]  # the link being made
    if event == "shutil.copyfile":
        return args[1]
    if event in MUTATING:
        return args[0]
    return None


def install() -> None:
    watch = os.environ.get("DRS_FAULT_WATCH", "")
    log_file = os.environ.get("DRS_FAULT_LOG")
    kill_at = int(os.environ.get("DRS_FAULT_KILL_AT", "0"))
    stop_at = int(os.environ.get("DRS_FAULT_STOP_AT", "0"))
    readonly = os.environ.get("DRS_FAULT_READONLY", "")
    nospace = os.environ.get("DRS_FAULT_NOSPACE", "")
    grow = os.path.abspath(os.environ["DRS_FAULT_GROW"]) if os.environ.get("DRS_FAULT_GROW") else ""
    count = 0
    growing = False

    def hook(event: str, args: tuple) -> None:
        nonlocal count, growing
        if grow and event == "open" and not growing and isinstance(args[0], str) and os.path.abspath(args[0]) == grow:
            mode = args[1]
            if isinstance(mode, str) and "r" in mode and "+" not in mode:
                growing = True
                try:
                    with open(grow, "a") as handle:
                        handle.write("growing,1,2,3,0\n")
                finally:
                    growing = False
            return
        path = mutation_of(event, args)
        if path is None or not _under(path, watch):
            return
        count += 1
        if log_file:
            with open(log_file, "a") as handle:
                handle.write(f"{count}\t{event}\t{os.fsdecode(os.fspath(path))}\n")
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if count == stop_at:
            os.kill(os.getpid(), signal.SIGSTOP)
        if readonly and _under(path, readonly) and event != "shutil.rmtree":  # its own removals raise, as they would
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(os.fspath(path)))

    if nospace:
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            target = os.readlink(f"/proc/self/fd/{fd}") if isinstance(fd, int) else ""
            if _under(target, nospace) and not os.path.isdir(target):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        os.fsync = fsync
    sys.addaudithook(hook)


def main() -> None:
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    install()
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
