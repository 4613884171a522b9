"""The kernel manager of grading: every kernel in its own sandbox, reached over Unix sockets.

:class:`SandboxedKernelManager` gives each kernel a private folder for its ZeroMQ
sockets (the ``ipc`` transport: the kernel has no network) and runs it through
:mod:`coursegrade.sandbox`: forked from the :mod:`coursegrade.zygote` when ``make grade``
runs one, started by ``python -m coursegrade.sandbox`` otherwise (``nbgrader autograde``).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import tempfile
import uuid

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Integer, List, Unicode

from . import sandbox, zygote


class SandboxedKernelManager(AsyncKernelManager):
    """Starts each kernel alone in :mod:`coursegrade.sandbox`, unless disabled."""

    enabled = Bool(True, help="Run kernels in the sandbox (own namespaces and user, nothing of the course "
                              "visible, resource limits).").tag(config=True)
    keep = List(Unicode(), help="Paths kernels may read (read-only), besides the system's folders and the "
                                "Python installation and environment the grader runs in.").tag(config=True)
    memory_bytes = Integer(4 * 2**30, help="Address-space limit of each kernel process, bytes.").tag(config=True)
    processes = Integer(32, help="Processes and threads one kernel may run at once.").tag(config=True)
    cpu_seconds = Integer(600, help="CPU seconds each kernel process may use.").tag(config=True)
    file_bytes = Integer(64 * 2**20, help="Largest file a kernel may write, bytes.").tag(config=True)
    tmp_bytes = Integer(64 * 2**20, help="Size of a kernel's private /tmp (and /dev/shm), bytes.").tag(config=True)
    open_files = Integer(256, help="Files a kernel process may hold open.").tag(config=True)

    sockets = None  # the folder of this kernel's Unix sockets

    def sandbox_settings(self) -> dict | None:
        """What the kernel's sandbox keeps and limits (see :func:`coursegrade.sandbox.settings`); None when disabled."""
        if not self.enabled:
            return None
        check_available()
        return sandbox.settings(list(self.keep), self.sockets, self.memory_bytes, self.processes, self.cpu_seconds,
                                self.file_bytes, self.tmp_bytes, self.open_files)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if zygote.address():  # a forked kernel enters the sandbox itself (ForkedProvisioner)
            return cmd
        settings = self.sandbox_settings()
        return cmd if settings is None else [sys.executable, "-m", "coursegrade.sandbox", json.dumps(settings), "--", *cmd]

    async def _async_pre_start_kernel(self, **kw):
        if self.enabled and self.sockets is None:
            self.sockets = tempfile.mkdtemp(prefix="coursegrade-kernel-")
            self.transport, self.ip = "ipc", f"{self.sockets}/kernel"
        if self.provisioner is None and zygote.address():
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = zygote.ForkedProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec,
                                                        parent=self)
        return await super()._async_pre_start_kernel(**kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if self.sockets is not None and not restart:
            shutil.rmtree(self.sockets, ignore_errors=True)
            self.sockets = None


@functools.cache
def check_available() -> None:
    """Raise a clear error unless a sandboxed process can start here (tried once per process)."""
    with tempfile.TemporaryDirectory(prefix="coursegrade-probe-") as folder:
        settings = sandbox.settings([], folder, 2**30, 8, 10, 2**20, 2**20, 64)
        probe = subprocess.run([sys.executable, "-m", "coursegrade.sandbox", json.dumps(settings), "--", "true"],
                               capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        raise RuntimeError(
            "the grading sandbox cannot start here (it needs user, mount, PID and network namespaces): "
            f"{probe.stderr.strip()[-500:]}. Set c.SandboxedKernelManager.enabled = False to grade without "
            "it (student code then runs as you, and can read the course files).")
