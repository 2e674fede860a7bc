"""gptlab.paths: where lesson runs are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptlab.paths import lesson_checkpoint, runs_dir


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("GPTLAB_RUNS_DIR", "GPTLAB_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_default_is_in_the_user_cache(clean_env, tmp_path):
    assert runs_dir() == tmp_path / "home" / ".cache" / "gptlab" / "runs"
    assert lesson_checkpoint() == runs_dir() / "lesson08"


def test_follows_the_cache_variables(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runs_dir() == tmp_path / "xdg" / "gptlab" / "runs"
    clean_env.setenv("GPTLAB_CACHE_DIR", str(tmp_path / "cache"))
    assert runs_dir() == tmp_path / "cache" / "runs"


def test_runs_dir_variable_wins(clean_env, tmp_path):
    clean_env.setenv("GPTLAB_CACHE_DIR", str(tmp_path / "cache"))
    clean_env.setenv("GPTLAB_RUNS_DIR", str(tmp_path / "runs"))
    assert runs_dir() == tmp_path / "runs"
    assert lesson_checkpoint("lesson11") == tmp_path / "runs" / "lesson11"
    clean_env.setenv("GPTLAB_RUNS_DIR", "~/myruns")  # ~ is expanded
    assert runs_dir() == tmp_path / "home" / "myruns"
    clean_env.setenv("GPTLAB_RUNS_DIR", "  ")  # blank: as if unset
    assert runs_dir() == tmp_path / "cache" / "runs"


def test_nothing_is_created(clean_env, tmp_path):
    clean_env.setenv("GPTLAB_RUNS_DIR", str(tmp_path / "runs"))
    lesson_checkpoint()
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "a b", None, 8])
def test_bad_names(clean_env, name):
    with pytest.raises(ValueError, match="folder name"):
        lesson_checkpoint(name)


def test_returns_paths(clean_env):
    assert isinstance(runs_dir(), Path) and isinstance(lesson_checkpoint("run-1.b_2"), Path)
