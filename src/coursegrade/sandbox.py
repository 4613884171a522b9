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
"""

from __future__ import annotations

import argparse
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


def wrap(kernel_cmd: list[str], hide: Path, keep: list[Path], memory_bytes: int) -> list[str]:
    """The full command that starts ``kernel_cmd`` inside the sandbox.

    Besides ``hide``, the user's home and the temporary folder are hidden; besides
    ``keep``, the Python installation the kernel runs on stays visible (read-only).
    """
    args = [sys.executable, "-m", "coursegrade.sandbox", "--memory", str(memory_bytes)]
    for path in (hide, Path.home(), Path(tempfile.gettempdir())):
        args += ["--hide", str(path)]
    for path in (*keep, Path(sys.prefix), Path(sys.base_prefix)):
        args += ["--keep", str(path)]
    if os.geteuid() == 0:
        args += ["--uid", str(NOBODY)]
    return namespace_prefix() + args + ["--"] + kernel_cmd


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _enter(hide: list[Path], keep: list[Path], uid: int | None, memory_bytes: int, cmd: list[str]) -> None:
    """Inside the new mount namespace: hide, bind back, drop privileges, exec ``cmd``."""
    _mount("--make-rprivate", "/")
    cmd = list(cmd)
    connection = None
    if "-f" in cmd:  # read now: its folder may be hidden below
        connection = Path(cmd[cmd.index("-f") + 1])
        connection_text = connection.read_bytes()
    staging = Path(tempfile.mkdtemp(prefix="sandbox-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    kept, links = [], []  # (holder, real path); (symlink, its target)
    for i, path in enumerate(p for p in keep if p.exists()):
        if path.is_symlink():
            links.append((path, Path(os.readlink(path))))
        holder = staging / str(i)
        holder.mkdir()
        _mount("--bind", str(path.resolve()), str(holder))
        kept.append((holder, path.resolve()))
    for folder in sorted({p.resolve() for p in hide}, key=lambda p: len(p.parts)):
        if folder.is_dir():
            _mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", str(folder))
    for holder, real in kept:
        real.mkdir(parents=True, exist_ok=True)
        _mount("--bind", str(holder), str(real))
        _mount("-o", "remount,bind,ro", str(real))
        subprocess.run(["umount", str(holder)], check=True)
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
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.environ["HOME"] = str(workdir)
    os.execvp(cmd[0], cmd)


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
    _enter(args.hide, args.keep, args.uid, args.memory, cmd)


if __name__ == "__main__":
    main()
