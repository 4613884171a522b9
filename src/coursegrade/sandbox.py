"""Run each grading kernel alone, with the operating system's isolation.

:func:`enter` turns the calling process into a sandboxed kernel in three steps:

- **A** (the caller) creates a user namespace with new mount, PID, network and IPC
  namespaces, forks **B** and waits for it, exiting with its status. A dies with its
  parent (the zygote or the grader), and B with A.
- **B** is process 1 of the new PID namespace. It builds a root file system on an
  empty tmpfs that holds only what a kernel needs, read-only (the system's ``/usr``,
  ``/etc`` and libraries, the Python installation and its virtual environment), plus
  minimal devices, its own ``/proc``, a small private ``/tmp`` and the folder of the
  kernel's Unix sockets; the course, the home folder, other kernels and the grader are
  not there. It forbids new namespaces, forks **C**, makes the socket folder read-only
  once the kernel has bound its sockets, reaps orphans and exits with C's status.
  When B exits, the kernel kills every process left in the namespace.
- **C** caps its resources (address space, processes, CPU time, file size, open files),
  drops to an unprivileged user (root in the namespace maps to the grader's user, and
  C to a uid of its own when the grader runs as root; a nested user namespace when it
  does not) and returns the kernel's command, whose connection file it has copied into
  its private folder.

A kernel therefore sees no other process, has no network (its only channel is the
socket folder), cannot read the course or write outside its tmpfs, and cannot outlive
or starve the others beyond its limits. ``python -m coursegrade.sandbox SETTINGS -- CMD``
does the same for a kernel started from scratch.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import platform
import resource
import signal
import sys
import time
from pathlib import Path

UID_BASE = 1_500_000_000  # root grader: kernel uid = UID_BASE + pid of A (distinct for concurrent kernels)
KERNEL_UID = 1000  # the kernel's uid inside its namespace
SOCKETS = 5  # ZeroMQ sockets an IPython kernel binds (shell, iopub, stdin, control, heartbeat)
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom")
ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "TZ", "JPY_", "NBGRADER_", "PYDEVD_", "OPENBLAS_", "OMP_", "MKL_",
               "MPLBACKEND", "PYTHONHASHSEED", "LC_")


def settings(keep: list[str], sockets: str, memory_bytes: int, processes: int, cpu_seconds: int,
             file_bytes: int, tmp_bytes: int, open_files: int) -> dict:
    """The sandbox of one kernel, as plain data: extra read-only paths, the socket folder, limits."""
    for name, limit in (("memory_bytes", memory_bytes), ("processes", processes), ("cpu_seconds", cpu_seconds),
                        ("file_bytes", file_bytes), ("tmp_bytes", tmp_bytes), ("open_files", open_files)):
        if limit <= 0:
            raise ValueError(f"{name} must be positive; got {limit}")
    paths = [*SYSTEM_PATHS, sys.prefix, sys.base_prefix, os.path.dirname(sys.executable), *keep]
    return {"keep": list(dict.fromkeys(str(p) for p in paths)), "sockets": str(sockets),
            "memory_bytes": memory_bytes, "processes": processes, "cpu_seconds": cpu_seconds,
            "file_bytes": file_bytes, "tmp_bytes": tmp_bytes, "open_files": open_files}


# Linux constants (include/uapi/linux/sched.h, mount.h, prctl.h)
_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWPID, _CLONE_NEWNET, _CLONE_NEWIPC = (
    0x00020000, 0x10000000, 0x20000000, 0x40000000, 0x08000000)
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT = 1, 2, 4, 8, 32
_MS_NOATIME, _MS_NODIRATIME, _MS_BIND, _MS_REC, _MS_PRIVATE, _MS_STRICTATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 24
_MNT_DETACH = 2
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
# New namespaces a kernel may create, per kind (none: no private tmpfs to fill memory with)
_NAMESPACE_LIMITS = ("cgroup", "ipc", "mnt", "net", "pid", "time", "uts")


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


def _mount(source: str | None, target: Path | str, fstype: str | None = None, flags: int = 0,
           data: str | None = None) -> None:
    """mount(2), as the ``mount`` command would call it."""
    source, fstype, data = (None if text is None else os.fsencode(text) for text in (source, fstype, data))
    _check(_libc().mount(source, os.fsencode(str(target)), fstype, flags, data), f"mount {target}")


def _remount_read_only(path: Path | str) -> None:
    """Make the bind mount at ``path`` read-only, keeping the flags a user namespace may not clear."""
    current = os.statvfs(path).f_flag
    flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
    for statvfs_flag, mount_flag in ((os.ST_NOSUID, _MS_NOSUID), (os.ST_NODEV, _MS_NODEV), (os.ST_NOEXEC, _MS_NOEXEC),
                                     (os.ST_NOATIME, _MS_NOATIME), (os.ST_NODIRATIME, _MS_NODIRATIME)):
        if current & statvfs_flag:
            flags |= mount_flag
    if not current & (os.ST_NOATIME | os.ST_RELATIME):
        flags |= _MS_STRICTATIME
    _mount(None, path, flags=flags)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _prctl(option: int, value: int) -> None:
    _check(_libc().prctl(option, value, 0, 0, 0), "prctl")


def enter(settings: dict, cmd: list[str]) -> list[str]:
    """Become a sandboxed kernel (see the module docstring); return ``cmd`` to run, in C."""
    connection = None
    if "-f" in cmd:  # the connection file's folder is not in the sandbox: carry its text in
        connection = Path(cmd[cmd.index("-f") + 1])
        connection_text = connection.read_bytes()
    as_root = os.geteuid() == 0
    kernel_uid = UID_BASE + os.getpid()
    if as_root:
        os.chown(settings["sockets"], kernel_uid, kernel_uid)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    _unshare(as_root, kernel_uid)
    b = os.fork()
    if b:
        _supervise(b)  # A: never returns
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # B dies with A
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    _build_root(settings)
    workdir = Path("/tmp/kernel")
    workdir.mkdir()
    if connection is not None:
        copy = workdir / connection.name
        copy.write_bytes(connection_text)
        cmd = list(cmd)
        cmd[cmd.index("-f") + 1] = str(copy)
    if as_root:
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, KERNEL_UID, KERNEL_UID)
    c = os.fork()
    if c:
        _init(c, settings["sockets"])  # B: never returns
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    _limit(settings)
    if as_root:
        os.setgroups([])
        os.setgid(KERNEL_UID)
        os.setuid(KERNEL_UID)
    else:
        _check(_libc().unshare(_CLONE_NEWUSER), "unshare (nested user namespace)")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{KERNEL_UID} 0 1\n")
        _write("/proc/self/gid_map", f"{KERNEL_UID} 0 1\n")
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    os.chdir(workdir)
    # JPY_PARENT_PID would make the kernel watch a parent it cannot see, and exit at once
    kept = {name: value for name, value in os.environ.items()
            if name.startswith(ENVIRONMENT) and name != "JPY_PARENT_PID"}
    os.environ.clear()
    os.environ.update(kept, HOME=str(workdir), TMPDIR="/tmp")
    return cmd


def _unshare(as_root: bool, kernel_uid: int) -> None:
    """A: new user, mount, PID, network and IPC namespaces, with the user mapping written.

    Unprivileged, A maps root in the namespace to itself. As root it maps root to root (to
    build the sandbox) and KERNEL_UID to ``kernel_uid``; only a process left outside the new
    namespace may write such a mapping, so a short-lived helper forked first writes it.
    """
    flags = _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWNET | _CLONE_NEWIPC
    if not as_root:
        uid, gid = os.getuid(), os.getgid()
        _check(_libc().unshare(flags), "unshare")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1\n")
        _write("/proc/self/gid_map", f"0 {gid} 1\n")
        return
    ready, go = os.pipe()
    helper = os.fork()
    if helper == 0:
        os.close(go)
        code = 1
        try:
            if os.read(ready, 1):  # A has unshared (nothing: it failed)
                maps = f"0 0 1\n{KERNEL_UID} {kernel_uid} 1\n"
                _write(f"/proc/{os.getppid()}/uid_map", maps)
                _write(f"/proc/{os.getppid()}/gid_map", maps)
                code = 0
        finally:
            os._exit(code)
    os.close(ready)
    try:
        _check(_libc().unshare(flags), "unshare")
        os.write(go, b"1")
    finally:
        os.close(go)
        _, status = os.waitpid(helper, 0)
    if status != 0:
        raise OSError("the grading sandbox could not map the kernel's user")


def _supervise(b: int) -> None:
    """A: wait for B (ignoring the interrupts meant for the kernel) and exit with its status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            _, status = os.waitpid(b, 0)
            break
        except ChildProcessError:
            status = 1 << 8
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def _init(c: int, sockets: str) -> None:
    """B, process 1: seal the socket folder once the kernel has bound its sockets; reap; exit with C's status."""
    deadline = time.monotonic() + 60
    sealed = False
    while True:
        pid, status = os.waitpid(-1, 0 if sealed else os.WNOHANG)
        if pid == c:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)
        if not sealed and (len(os.listdir(sockets)) >= SOCKETS or time.monotonic() > deadline):
            _remount_read_only(sockets)
            sealed = True
        elif pid == 0:
            time.sleep(0.002)


def _build_root(settings: dict) -> None:
    """B: a new root on tmpfs with only the kept paths (read-only), devices, /proc, /tmp and the sockets."""
    _mount(None, "/", flags=_MS_REC | _MS_PRIVATE)
    base = Path("/tmp")
    _mount("tmpfs", base, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=755,size=1m")
    (base / "oldroot").mkdir()
    _check(_libc().syscall(_SYS_PIVOT_ROOT[platform.machine()], b"/tmp", b"/tmp/oldroot"), "pivot_root")
    os.chdir("/")
    old = Path("/oldroot")
    for folder in ("/dev/shm", "/tmp"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        _mount("tmpfs", folder, "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode=1777,size={settings['tmp_bytes']}")
    for path in _unique_existing(settings["keep"], old):
        _bind(old, path, read_only=True)
    _bind(old, Path(settings["sockets"]), read_only=False)
    Path("/dev").mkdir(exist_ok=True)
    for device in DEVICES:
        (Path("/dev") / device).touch()
        _mount(str(old / "dev" / device), Path("/dev") / device, flags=_MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        (Path("/dev") / name).symlink_to(target)
    Path("/proc").mkdir(exist_ok=True)
    try:
        _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    except OSError as error:
        raise RuntimeError("the grading sandbox could not mount its own /proc (is the machine's /proc partly "
                           f"masked, as in some containers?): {error}") from None
    for kind in _NAMESPACE_LIMITS:  # this user namespace's limits: no new namespaces but C's own user namespace
        _write(f"/proc/sys/user/max_{kind}_namespaces", "0")
    _write("/proc/sys/user/max_user_namespaces", "1")
    _check(_libc().umount2(b"/oldroot", _MNT_DETACH), "umount /oldroot")
    old.rmdir()
    _remount_read_only("/")


def _unique_existing(paths, old: Path) -> list[Path]:
    """The kept paths that exist, outermost first, without those inside another kept path."""
    found = sorted({Path(p) for p in paths if os.path.lexists(f"{old}{p}")}, key=lambda p: len(p.parts))
    kept = []
    for path in found:
        if not any(path.is_relative_to(k) and not os.path.islink(f"{old}{k}") for k in kept):
            kept.append(path)
    return kept


def _bind(old: Path, path: Path, read_only: bool) -> None:
    """Show ``path`` of the old root at the same place in the new one (symlinks on the way recreated)."""
    parts = Path("/")
    for part in path.parts[1:]:
        parts = parts / part
        source = Path(f"{old}{parts}")
        if os.path.islink(source):
            if not os.path.lexists(parts):
                parts.parent.mkdir(parents=True, exist_ok=True)
                parts.symlink_to(os.readlink(source))
            target = Path(os.readlink(source))
            _bind(old, (parts.parent / target) if not target.is_absolute() else target, read_only)
            return
    if os.path.isdir(f"{old}{path}"):
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    _mount(f"{old}{path}", path, flags=_MS_BIND | _MS_REC)
    if read_only:
        _remount_read_only(path)


def _limit(settings: dict) -> None:
    """C: the kernel's resource limits (per process; processes counted per kernel, as each has its own user)."""
    for limit, value in ((resource.RLIMIT_AS, settings["memory_bytes"]), (resource.RLIMIT_NPROC, settings["processes"]),
                         (resource.RLIMIT_CPU, settings["cpu_seconds"]), (resource.RLIMIT_FSIZE, settings["file_bytes"]),
                         (resource.RLIMIT_NOFILE, settings["open_files"]), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))


def main(argv=None) -> None:
    """``python -m coursegrade.sandbox SETTINGS_JSON -- CMD...``: run CMD as a sandboxed kernel."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[1] != "--":
        raise SystemExit("usage: python -m coursegrade.sandbox SETTINGS_JSON -- CMD...")
    cmd = enter(json.loads(args[0]), args[2:])
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
