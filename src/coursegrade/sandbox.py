"""Run a grading kernel where the course's files are out of its reach.

The kernel command is wrapped as::

    unshare --mount --fork [--user --map-root-user] -- python -m coursegrade.sandbox \\
        --hide COURSE_ROOT --hide ~ --hide /tmp --keep COURSE_ROOT/.venv --keep COURSE_ROOT/src [--uid 65534] \\
        --memory BYTES -- python -m ipykernel_launcher -f CONNECTION_FILE

Inside its own mount namespace the wrapper mounts empty tmpfs over the course
root (hiding ``solutions/``, ``submitted/``, ``autograded/``, the gradebook),
the temporary folder (other kernels, scratch copies) and the user's home (Jupyter
runtime files), binds back read-only the paths the kernel needs (the virtual
environment, the Python installation, the ``roofline`` package), caps the
address space, drops to an unprivileged user when started as root (so it cannot
undo the mounts), and runs the kernel in an empty private folder.

A kernel forked by :mod:`coursegrade.zygote` gets the same isolation without
the wrapper processes: :func:`unshare_mounts` then :func:`isolate`, in the child.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

NOBODY = 65534


@functools.cache
def available() -> bool:
    """Whether mount namespaces can be created here (probed once per process)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(namespace_prefix() + ["true"], capture_output=True)
    return probe.returncode == 0


def namespace_prefix() -> list[str]:
    """``unshare`` arguments for a private mount namespace (a user namespace too when not root)."""
    args = ["unshare", "--mount", "--fork"]
    if os.geteuid() != 0:
        args[1:1] = ["--user", "--map-root-user"]
    return args + ["--"]


def plan(hide: Path, keep: list[Path], memory_bytes: int) -> dict:
    """What to hide and keep, whom to run as and the memory cap, for a kernel that must not see ``hide``.

    Besides ``hide``, the user's home and the temporary folder are hidden; besides
    ``keep``, the Python installation the kernel runs on stays visible (read-only).
    """
    return {"hide": [str(p) for p in (hide, Path.home(), Path(tempfile.gettempdir()))],
            "keep": [str(p) for p in (*keep, Path(sys.prefix), Path(sys.base_prefix))],
            "uid": NOBODY if os.geteuid() == 0 else None,
            "memory_bytes": memory_bytes}


def wrap(kernel_cmd: list[str], settings: dict) -> list[str]:
    """The full command that starts ``kernel_cmd`` inside the sandbox described by :func:`plan`."""
    args = [sys.executable, "-m", "coursegrade.sandbox", "--memory", str(settings["memory_bytes"])]
    args += [arg for path in settings["hide"] for arg in ("--hide", path)]
    args += [arg for path in settings["keep"] for arg in ("--keep", path)]
    if settings["uid"] is not None:
        args += ["--uid", str(settings["uid"])]
    return namespace_prefix() + args + ["--"] + kernel_cmd


_CLONE_NEWNS, _CLONE_NEWUSER = 0x00020000, 0x10000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT = 1, 2, 4, 8, 32
_MS_NOATIME, _MS_NODIRATIME, _MS_BIND, _MS_REC, _MS_PRIVATE, _MS_STRICTATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 24


@functools.cache
def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare_mounts() -> None:
    """Move this single-threaded process into its own mount namespace, as ``unshare --mount`` does.

    When not root, a user namespace mapping the caller to root comes with it
    (``unshare --user --map-root-user``), so that ``mount`` is allowed inside.
    """
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWNS if os.geteuid() == 0 else _CLONE_NEWNS | _CLONE_NEWUSER
    _check(_libc().unshare(flags), "unshare")
    if flags & _CLONE_NEWUSER:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


def _mount(source: str | None, target: Path, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    """mount(2), as the ``mount`` command would call it (no helper process)."""
    source, fstype, data = (None if text is None else os.fsencode(text) for text in (source, fstype, data))
    _check(_libc().mount(source, os.fsencode(str(target)), fstype, flags, data), f"mount {target}")


def _remount_read_only(path: Path) -> None:
    """Make the bind mount at ``path`` read-only, as ``mount -o remount,bind,ro`` does.

    The mount's nosuid, nodev, noexec and access-time flags are passed on unchanged:
    inside a user namespace the kernel refuses to clear them.
    """
    current = os.statvfs(path).f_flag
    flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
    for statvfs_flag, mount_flag in ((os.ST_NOSUID, _MS_NOSUID), (os.ST_NODEV, _MS_NODEV), (os.ST_NOEXEC, _MS_NOEXEC),
                                     (os.ST_NOATIME, _MS_NOATIME), (os.ST_NODIRATIME, _MS_NODIRATIME)):
        if current & statvfs_flag:
            flags |= mount_flag
    if not current & (os.ST_NOATIME | os.ST_RELATIME):
        flags |= _MS_STRICTATIME
    _mount(None, path, flags=flags)


def isolate(settings: dict, cmd: list[str]) -> list[str]:
    """Inside a new mount namespace: hide, bind back, cap memory, drop privileges.

    Leaves the process in an empty private working folder and returns ``cmd``
    with its connection file (``-f PATH``) copied there, since its folder may be hidden.
    """
    hide, keep = [Path(p) for p in settings["hide"]], [Path(p) for p in settings["keep"]]
    uid = settings["uid"]
    _mount(None, Path("/"), flags=_MS_REC | _MS_PRIVATE)
    cmd = list(cmd)
    connection = None
    if "-f" in cmd:  # read now: its folder may be hidden below
        connection = Path(cmd[cmd.index("-f") + 1])
        connection_text = connection.read_bytes()
    staging = Path(tempfile.mkdtemp(prefix="sandbox-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    kept, links = [], []  # (holder, real path); (symlink, its target)
    unique = {p.resolve(): p for p in keep if p.exists()}.values()  # one mount per real folder
    for i, path in enumerate(unique):
        if path.is_symlink():
            links.append((path, Path(os.readlink(path))))
        holder = staging / str(i)
        holder.mkdir()
        _mount(str(path.resolve()), holder, flags=_MS_BIND)
        kept.append((holder, path.resolve()))
    for folder in sorted({p.resolve() for p in hide}, key=lambda p: len(p.parts)):
        if folder.is_dir():
            _mount("tmpfs", folder, "tmpfs", data="mode=755")
    for holder, real in kept:
        real.mkdir(parents=True, exist_ok=True)
        _mount(str(holder), real, flags=_MS_BIND)
        _remount_read_only(real)
        _check(_libc().umount2(os.fsencode(str(holder)), 0), f"umount {holder}")
        holder.rmdir()
    staging.rmdir()
    for link, target in links:
        if not link.exists() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)
    workdir = Path(tempfile.mkdtemp(prefix="kernel-"))
    if connection is not None:
        copy = workdir / connection.name
        copy.write_bytes(connection_text)
        cmd[cmd.index("-f") + 1] = str(copy)
    if uid is not None:
        for path in [workdir, *workdir.iterdir()]:
            os.chown(path, uid, uid)
    os.chdir(workdir)
    resource.setrlimit(resource.RLIMIT_AS, (settings["memory_bytes"], settings["memory_bytes"]))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.environ["HOME"] = str(workdir)
    return cmd


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hide", type=Path, action="append", required=True)
    parser.add_argument("--keep", type=Path, action="append", default=[])
    parser.add_argument("--uid", type=int)
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("a command to run is required after --")
    settings = {"hide": args.hide, "keep": args.keep, "uid": args.uid, "memory_bytes": args.memory}
    cmd = isolate(settings, cmd)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
