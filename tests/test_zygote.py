"""The kernel zygote: forked kernels run, are interrupted, report how they ended, and stay sandboxed."""

import asyncio
import os
import subprocess
import sys
import time

import pytest

from coursegrade import zygote
from coursegrade.kernels import SandboxedKernelManager

pytestmark = pytest.mark.slow


async def _started(course_root):
    km = SandboxedKernelManager(kernel_name="python3")
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def _run(kc, code):
    """Execute ``code``; return (reply status, stdout text, error name)."""
    printed = []

    def keep(msg):
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])

    reply = await kc.execute_interactive(code, timeout=30, output_hook=keep)
    return reply["content"]["status"], "".join(printed), reply["content"].get("ename")


async def _wait_until_dead(km):
    for _ in range(200):
        if not await km.is_alive():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the kernel did not die")


def test_a_forked_kernel_is_sandboxed_and_reports_its_exit_status(tmp_path):
    """Alone in its namespaces: process 1 is its sandbox's init, its uid is unprivileged, no course, no zygote."""
    course = tmp_path / "course"
    course.mkdir()
    (course / "solution.txt").write_text("the answer")

    async def scenario(server):
        km, kc = await _started(course)
        assert isinstance(km.provisioner, zygote.ForkedProvisioner)
        status, printed, _ = await _run(kc, (
            "import os\n"
            f"print(os.getppid(), os.getuid(), os.path.exists({str(course / 'solution.txt')!r}),"
            f" {zygote.ADDRESS_ENV!r} in os.environ, os.path.exists({os.environ[zygote.ADDRESS_ENV]!r}))"))
        assert status == "ok"
        assert printed.split() == ["1", "1000", "False", "False", "False"]
        kc.execute("import os; os._exit(3)")
        await _wait_until_dead(km)
        assert km.provisioner.process.returncode == 3
        kc.stop_channels()
        await km.cleanup_resources()

    with zygote.running(["numpy"]) as server:
        asyncio.run(scenario(server))


def test_a_forked_kernel_can_be_interrupted_and_shut_down(tmp_path):
    async def scenario():
        km, kc = await _started(tmp_path)
        kc.execute("while True: pass")
        await asyncio.sleep(0.5)
        await km.interrupt_kernel()
        reply = await kc.get_shell_msg(timeout=30)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert await _run(kc, "print(6 * 7)") == ("ok", "42\n", None)  # the kernel lives on
        kc.stop_channels()
        await km.shutdown_kernel()
        assert not await km.is_alive()
        assert km.provisioner is None or km.provisioner.process is None  # waited for and released

    with zygote.running([]):
        asyncio.run(scenario())


def test_a_zygote_started_early_and_never_used_stops_cleanly():
    unused = zygote.Zygote()  # as when the configuration turns the zygote off, or names no known assignment
    unused.stop()
    assert unused.process.returncode is not None and not os.path.exists(unused.folder)


def test_any_other_kernel_command_is_forked_then_executed():
    with zygote.running([]):
        kernel = zygote.ForkedKernel(os.environ[zygote.ADDRESS_ENV], [sys.executable, "-c", "raise SystemExit(5)"],
                                     dict(os.environ), os.getcwd(), None)
        assert kernel.wait(timeout=30) == 5


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root (CI runs as root)")
def test_the_zygote_serves_no_other_user():
    with zygote.running([]):
        path = os.environ[zygote.ADDRESS_ENV]
        os.chmod(os.path.dirname(path), 0o755)  # let the other user reach the socket: the zygote must refuse
        os.chmod(path, 0o777)
        pid = os.fork()
        if pid == 0:
            os.setuid(65534)
            try:
                zygote.ForkedKernel(path, [sys.executable, "-c", "pass"], {}, "/", None)
            except RuntimeError as error:
                os._exit(0 if "started no kernel" in str(error) else 2)
            except BaseException:  # noqa: BLE001 - any other outcome fails the test below
                os._exit(3)
            os._exit(1)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def _gone(pid, within=10.0):
    """Whether process ``pid`` ends (exits, or is a zombie) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def test_kernels_end_with_the_zygote_and_the_zygote_with_the_grader(tmp_path):
    async def start():
        km, kc = await _started(tmp_path)
        kc.stop_channels()
        return km.provisioner.process.pid

    with zygote.running([]):
        kernel = asyncio.run(start())
        assert not _gone(kernel, within=0.5)
    assert _gone(kernel)  # the grader forgot it, but the zygote has stopped

    grader = subprocess.Popen([sys.executable, "-c", "import time\nfrom coursegrade import zygote\n"
                               "with zygote.running([]) as server:\n    print(server.pid, flush=True)\n"
                               "    time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    server = int(grader.stdout.readline())
    grader.kill()
    grader.wait()
    assert _gone(server)
