"""A fork server for grading kernels: import a kernel's modules once, fork a fresh kernel per notebook.

Starting a Python kernel costs about a second of CPU, nearly all of it imports
(IPython, ipykernel and its debugger, numpy, the course package). ``make grade``
starts one zygote process that imports them before any student code exists;
each notebook's kernel is then a fork of it, which applies the sandbox
(:func:`coursegrade.sandbox.enter`) and starts the kernel app. A child holds
only the zygote's memory: those modules, and its own request.

The zygote is started first thing and imports IPython's modules while the grader reads
the course; the grader then writes the other modules to preload (``c.KernelZygote.preload``)
to its stdin, as a JSON list.

Protocol, over a Unix socket in a private (0700) folder of the temporary folder,
which sandboxed kernels cannot see: the client sends one JSON request
``{"cmd": [...], "env": {...}, "cwd": ..., "sandbox": settings or null}`` and gets
``{"pid": N}`` with a pidfd of the child (SCM_RIGHTS); when the child exits the
zygote sends ``{"exit": code}`` and closes the connection. Only processes of the
zygote's own user may connect.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import pathlib
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from jupyter_client.provisioning import LocalProvisioner
from traitlets import Bool, List, Unicode
from traitlets.config import Configurable

from . import sandbox

ADDRESS_ENV = "COURSEGRADE_ZYGOTE"
_PR_SET_PDEATHSIG = 1
# What an IPython kernel imports while it starts (sys.modules before and after IPKernelApp.initialize).
KERNEL_MODULES = ("IPython", "IPython.core.completerlib", "IPython.core.debugger", "IPython.extensions.storemagic",
                  "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
                  "tornado.platform.asyncio", "psutil", "sqlite3")


class KernelZygote(Configurable):
    """Settings of the zygote `make grade` forks its kernels from."""

    enabled = Bool(True, help="Fork grading kernels from a zygote instead of starting each from scratch.").tag(config=True)
    preload = List(Unicode(), ["numpy"], help="Modules the zygote imports for every kernel, besides the kernel's own.").tag(config=True)


def address() -> str | None:
    """The socket of the zygote serving this process's kernels, if one is running."""
    return os.environ.get(ADDRESS_ENV) or None


class Zygote:
    """A zygote process, started at once so that it imports the kernel's modules while its
    caller gets ready; :meth:`serving` then names the other modules and puts it to use."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="coursegrade-zygote-")  # 0700, under the folder the sandbox hides
        self.path = os.path.join(self.folder, "socket")
        # One BLAS thread per kernel: kernels run side by side, and each has a small process limit.
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.process = subprocess.Popen([sys.executable, "-m", "coursegrade.zygote", self.path], stdin=subprocess.PIPE,
                                        env=env)

    @contextlib.contextmanager
    def serving(self, preload: list[str]):
        """Have the zygote import ``preload`` too, then yield its process; kernel managers in
        this process and its forks use it until the block ends."""
        with contextlib.suppress(BrokenPipeError):  # it died: reported below
            self.process.stdin.write(json.dumps(preload).encode())
            self.process.stdin.close()
        deadline = time.monotonic() + 30
        while not os.path.exists(self.path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the kernel zygote did not start (exit status {self.process.poll()})")
            time.sleep(0.01)
        os.environ[ADDRESS_ENV] = self.path
        try:
            yield self.process
        finally:
            os.environ.pop(ADDRESS_ENV, None)

    def stop(self) -> None:
        """End the zygote (and so its kernels) and remove its folder."""
        self.process.terminate()
        self.process.wait()
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def running(preload: list[str]):
    """Start a zygote importing ``preload`` and yield its process (see :meth:`Zygote.serving`)."""
    zygote = Zygote()
    try:
        with zygote.serving(preload) as process:
            yield process
    finally:
        zygote.stop()


class ForkedKernel:
    """A Popen-like handle on a kernel the zygote forked (what LocalProvisioner drives)."""

    stdin = stdout = stderr = None

    def __init__(self, zygote: str, cmd: list[str], env: dict, cwd: str, settings: dict | None):
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._socket.connect(zygote)
            self._socket.sendall(json.dumps({"cmd": cmd, "env": env, "cwd": cwd, "sandbox": settings}).encode())
            self._socket.shutdown(socket.SHUT_WR)
            message, fds, _, _ = socket.recv_fds(self._socket, 4096, 1)
        except OSError as error:
            message, fds = str(error), []
        if not fds:
            self._socket.close()
            raise RuntimeError(f"the kernel zygote at {zygote} started no kernel: {message!r}")
        self.pid = json.loads(message)["pid"]
        self._pidfd = fds[0]
        self.returncode = None

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._pidfd], [], [], 0)[0]:
            self._collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            self._collect()
        return self.returncode

    def _collect(self) -> None:
        """The child has exited: read its exit status, which the zygote sends once it has reaped it."""
        self._socket.settimeout(10)
        data = b""
        with contextlib.suppress(OSError):  # timed out or reset: the status is lost
            data = _read_all(self._socket)
        self.returncode = json.loads(data)["exit"] if data else -signal.SIGKILL  # zygote gone: status unknown
        self._socket.close()
        os.close(self._pidfd)

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkedProvisioner(LocalProvisioner):
    """LocalProvisioner whose kernel is forked by the zygote; its parent kernel manager gives the sandbox."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        env = dict(kwargs.get("env") or os.environ)
        env.pop(ADDRESS_ENV, None)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        self.process = ForkedKernel(address(), cmd, env, cwd, self.parent.sandbox_settings())
        self.pid = self.pgid = self.process.pid  # the child starts its own session
        self.cwd = pathlib.Path(cwd)
        return self.connection_info


def serve(path: str) -> None:
    """The zygote: listen on ``path``, import the kernel's modules and those named on stdin
    (a JSON list), fork one kernel per request.

    It ends with the grader that started it (SIGTERM when its parent dies), and its
    kernels end with it.
    """
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the grader died before the line above
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    listener.listen(64)
    os.rename(path + ".tmp", path)  # clients may connect now; they wait while the modules load
    _import(KERNEL_MODULES)
    _import(json.loads(sys.stdin.read() or "[]"))  # sent once the grader has read its configuration
    gc.freeze()  # children's collections skip these objects (less CPU, fewer copied pages)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children = {}  # pid -> connection that gets its exit status
    while True:
        ready, _, _ = select.select([listener, wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
            _reap(children)
        if listener not in ready:
            continue
        connection, _ = listener.accept()
        peer_uid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if peer_uid != os.getuid():
            connection.close()
            continue
        request = json.loads(_read_all(connection))
        pid = os.fork()
        if pid == 0:
            for fd in (listener, connection, *children.values()):
                fd.close()
            os.close(wake_read)
            os.close(wake_write)
            _become_kernel(request)  # never returns
        pidfd = os.pidfd_open(pid)
        socket.send_fds(connection, [json.dumps({"pid": pid}).encode()], [pidfd])
        os.close(pidfd)
        children[pid] = connection


def _import(names) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:  # the kernel imports it itself, or fails the same way
            print(f"coursegrade.zygote: cannot preload {name}: {error}", file=sys.stderr)


def _read_all(connection: socket.socket) -> bytes:
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    return data


def _reap(children: dict) -> None:
    """Collect exited children and tell each one's client its exit status."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
            connection.close()


def _become_kernel(request: dict) -> None:
    """In the forked child: a new session, the client's environment, the sandbox, then the kernel."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.environ.clear()
        os.environ.update(request["env"])
        cmd = request["cmd"]
        if request["sandbox"]:
            cmd = sandbox.enter(request["sandbox"], cmd)  # returns in the sandboxed kernel process
        else:
            os.chdir(request["cwd"])
        if cmd[:3] != [sys.executable, "-m", "ipykernel_launcher"]:
            os.execvp(cmd[0], cmd)  # another kind of kernel: sandboxed, but started from scratch
        import runpy

        # parent_handle's default was read from the zygote's environment when ipykernel was
        # imported; 0 turns the parent poller off: the kernel's life is bound to the zygote's
        # by the sandbox (or, unsandboxed, by the zygote's parent-death signal, see serve).
        sys.argv = [cmd[0], *cmd[3:], "--IPKernelApp.parent_handle=0"]
        sys.path[0] = os.getcwd()  # as `python -m` sets it; ipykernel_launcher removes it again
        runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported on stderr, the kernel manager sees it die
        import traceback

        traceback.print_exc()
    # Skip the interpreter's shutdown: a forked child can hang there joining threads it
    # inherited only in name, and nothing the kernel leaves behind needs cleaning up.
    for stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1])
