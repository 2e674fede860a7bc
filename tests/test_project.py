"""The project's own promises: one source of dependencies, README commands = CI commands."""

import re
import tomllib
from pathlib import Path

import yaml

from gptlab import cli

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _readme_commands() -> list[str]:
    """Commands in the README's ```bash blocks under '## Set up'."""
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    return [line.split("#")[0].strip() for b in blocks for line in b.splitlines() if line.strip()]


def test_environment_yml_in_step_with_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = {re.split(r"[<>=]", d)[0]: d for d in deps if isinstance(d, str)}
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    project = _pyproject()["project"]
    # Python and PyTorch bounds are the same; everything else comes from pyproject via pip.
    assert conda["python"] == "python" + project["requires-python"]
    torch_req = next(d for d in project["dependencies"] if d.startswith("torch"))
    assert conda["pytorch"] == "py" + torch_req
    assert set(conda) == {"python", "pip", "pytorch"}
    assert pip == ["-e .[dev]"]


def test_dev_extra_has_test_tools():
    dev = " ".join(_pyproject()["project"]["optional-dependencies"]["dev"])
    for tool in ("pytest", "nbval", "pytest-xdist", "hypothesis", "ruff"):
        assert tool in dev


def test_ci_runs_the_readme_commands():
    commands = _readme_commands()
    assert 'pip install -e ".[dev]"' in commands and "pytest" in commands
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [line.strip() for line in ci.split("# --- the README's two commands ---")[1].splitlines()]
    assert 'pip install -e ".[dev]"' in ci_lines and "pytest" in ci_lines
    assert "torch==2.13.0" in ci and "GPTLAB_SMOKE=1" in ci


def test_console_script_declared():
    assert _pyproject()["project"]["scripts"]["gptlab"] == "gptlab.cli:main"


def test_cli_lab_dry_run(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["lab", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "jupyterlab" in out and str(ROOT / "lessons") in out


def test_cli_doctor(capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("python", "torch", "device", "widgets", "data"):
        assert name in out


def test_course_is_consistent():
    """`gptlab course check` on the real course: lessons/ fresh, notebooks clean, README map."""
    from gptlab import course

    assert course.check(ROOT) == []
