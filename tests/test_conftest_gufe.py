"""The ``gufe`` marker's gate in tests/conftest.py: one skip line without the stack, and a failing
session under FAHFLOW_REQUIRE_GUFE=1 when a ``gufe`` test skipped or none ran.

Each case runs pytest in a subprocess on a tiny test file beside a copy of the real conftest.
The stack is replaced by stand-in ``gufe``/``feflow`` packages put first on PYTHONPATH (empty
ones, or ones whose import fails), so these tests do not need the stack and always run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

INI = """\
[pytest]
addopts = -ra --strict-markers -p no:cacheprovider
markers =
    gufe: needs the gufe stack
"""

TESTS_WITH_GUFE = """\
import pytest

@pytest.mark.gufe
def test_one():
    pass

@pytest.mark.gufe
def test_two():
    pass

def test_plain():
    pass
"""


def run_pytest(
    tmp_path: Path, tests: str, *, stack: str, require: bool
) -> subprocess.CompletedProcess[str]:
    """pytest on ``tests`` with the stand-in stack ``stack`` ("present" or "missing")."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(CONFTEST, project / "conftest.py")
    (project / "pytest.ini").write_text(INI)
    (project / "test_cases.py").write_text(tests)
    fakes = tmp_path / "fakes"
    body = "" if stack == "present" else "raise ImportError('simulated: not installed')\n"
    for name in ("gufe", "feflow"):
        (fakes / name).mkdir(parents=True)
        (fakes / name / "__init__.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "FAHFLOW_REQUIRE_GUFE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fakes), env.get("PYTHONPATH")]))
    if require:
        env["FAHFLOW_REQUIRE_GUFE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(project / "pytest.ini"), str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def skip_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("SKIPPED")]


def test_without_the_stack_gufe_tests_skip_under_one_line_and_the_session_passes(
    tmp_path: Path,
) -> None:
    result = run_pytest(tmp_path, TESTS_WITH_GUFE, stack="missing", require=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped" in result.stdout
    (line,) = skip_lines(result.stdout)
    assert line.startswith("SKIPPED [2] ")
    assert "gufe stack not installed (import gufe: ImportError: simulated" in line
    assert "scripts/bootstrap" in line


def test_required_stack_missing_fails_the_session_and_says_why(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, TESTS_WITH_GUFE, stack="missing", require=True)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "gufe stack required" in result.stdout
    assert "FAHFLOW_REQUIRE_GUFE=1" in result.stdout
    assert "2 test(s) marked gufe skipped (Skipped: gufe stack not installed" in result.stdout


def test_required_stack_present_and_run_passes(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, TESTS_WITH_GUFE, stack="present", require=True)
    assert result.returncode == 0, result.stdout
    assert "3 passed" in result.stdout
    assert "gufe stack required" not in result.stdout


def test_required_but_no_gufe_test_ran_fails(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "def test_plain():\n    pass\n", stack="present", require=True)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "no test marked gufe ran" in result.stdout


def test_required_and_a_gufe_test_skipped_for_another_reason_fails(tmp_path: Path) -> None:
    tests = "import pytest\n\n@pytest.mark.gufe\ndef test_one():\n    pytest.skip('no sqm')\n"
    result = run_pytest(tmp_path, tests, stack="present", require=True)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "1 test(s) marked gufe skipped (Skipped: no sqm)" in result.stdout
