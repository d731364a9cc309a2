"""The plugin's fixtures as a user's test suite uses them, run through pytester."""

from __future__ import annotations

import pytest
from plugin_support import APPS_DIR

FIXTURES = ["fake_clock", "simulator", "manager_process"]


def _plugin_section(output: str) -> str:
    """Return the part of ``pytest --fixtures`` output that lists our fixtures."""
    start = output.index("fixtures defined from cotyledon_testkit.plugin")
    end = output.find("fixtures defined from", start + 1)
    return output[start:] if end == -1 else output[start:end]


def test_plugin_fixtures_listed_with_docstrings(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-v")

    section = _plugin_section(result.stdout.str())

    for fixture in FIXTURES:
        assert f"\n{fixture} -- " in section
    assert "no docstring available" not in section
    assert "A factory that starts a real manager in a fresh interpreter." in section
    assert "A ``Simulator`` on ``fake_clock``" in section
    assert "A ``FakeClock`` at time 0" in section


def test_plugin_fixtures_work_in_user_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user=f"""
        import signal

        from cotyledon_testkit import WorkerBehaviour, WorkerKilled

        def test_stuck_worker_is_killed(simulator):
            simulator.add("web", 2, behaviour=WorkerBehaviour(stop_after=None))
            simulator.start()
            simulator.send_signal(signal.SIGTERM)
            simulator.run_until_idle()
            assert [r.waited for r in simulator.records(WorkerKilled)] == [60.0, 60.0]
            assert simulator.exit_status == 0

        def test_worker_comes_back(manager_process):
            manager = manager_process("plugin_apps:two_waiters", sys_path=[{str(APPS_DIR)!r}])
            manager.wait_ready()
            mark = manager.mark()
            old = manager.kill_worker("waiter", 0)
            back = manager.wait_worker_ready("waiter", 0, after=mark)
            manager.send_signal(signal.SIGTERM)
            assert manager.wait_exit() == 0
            assert back.pid != old
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=2)


def test_plugin_failed_waits_show_context(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        app_that_fails="""
        def main():
            raise SystemExit("bad configuration")
        """,
        test_user=f"""
        import pathlib

        def test_waits_in_vain(manager_process):
            manager = manager_process("plugin_apps:two_waiters", sys_path=[{str(APPS_DIR)!r}])
            manager.wait_ready()
            manager.wait_event("never", timeout=0.5)

        def test_app_starts(manager_process):
            here = pathlib.Path(__file__).parent
            manager_process("app_that_fails:main", sys_path=[here]).wait_ready(timeout=60)
        """,
    )

    result = pytester.runpytest_subprocess()

    output = result.stdout.str()
    result.assert_outcomes(failed=2)
    assert "WaitTimeoutError: timed out after 0.5 s waiting for event never" in output
    assert "manager_ready pid=" in output
    assert "processes of the session:" in output
    assert "master process" in output
    assert "waiter worker(1)" in output
    assert "Manager ready: waiter 2/2" in output
    assert "ManagerExitedError: the master exited with status 1 while waiting for" in output
    assert "bad configuration" in output
