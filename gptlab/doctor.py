"""``gptlab doctor``: is this machine ready for the course? Each check says how to fix it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from typing import Callable


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, sys.version.split()[0], "install Python 3.10 or newer")


def check_package(module: str, pip_name: str | None = None, required: bool = True) -> Check:
    """Is ``module`` installed? Reads metadata only: importing JupyterLab alone takes seconds."""
    fix = f'pip install {pip_name or module}  (or reinstall the course: pip install -e ".[dev]")'
    if importlib.util.find_spec(module) is None:
        return Check(module, False, "not installed", fix, required)
    try:
        version = importlib.metadata.version(pip_name or module)
    except importlib.metadata.PackageNotFoundError:
        version = "installed"
    return Check(module, True, version, required=required)


def check_device() -> Check:
    from gptlab.device import available_devices, describe_device, pick_device

    try:
        device = pick_device()
    except ValueError as err:
        return Check("device", False, str(err), "unset GPTLAB_DEVICE or set it to 'auto'")
    others = ", ".join(available_devices())
    return Check("device", True, f"{describe_device(device)} (available: {others})")


def check_widgets() -> Check:
    try:
        import ipywidgets
        import jupyterlab_widgets  # noqa: F401  (the JupyterLab front end of ipywidgets)
    except ImportError as err:
        return Check("widgets", False, str(err), 'pip install "ipywidgets>=8" jupyterlab')
    return Check("widgets", True, f"ipywidgets {ipywidgets.__version__}")


def check_data() -> Check:
    from gptlab import data

    here = [name for name in data.list_corpora() if data.available_offline(name)]
    missing = [name for name in data.list_corpora() if name not in here]
    detail = f"here: {', '.join(here) or 'none'}"
    if missing:
        detail += (
            f"; not downloaded yet: {', '.join(missing)} (fetched on first use; for offline "
            "use run `gptlab data download` or set GPTLAB_DATA_DIR)"
        )
    # Lessons can fall back to the built-in corpus, so a missing download is not an error.
    return Check("data", True, detail, required=False)


CHECKS: list[Callable[[], Check]] = [
    check_python,
    lambda: check_package("torch"),
    lambda: check_package("numpy"),
    lambda: check_package("matplotlib"),
    lambda: check_package("einops"),
    lambda: check_package("tqdm"),
    lambda: check_package("safetensors"),
    lambda: check_package("regex"),
    lambda: check_package("jupyterlab"),
    check_widgets,
    check_device,
    check_data,
]


def run_checks(out=print) -> bool:
    """Print one line per check; return True when every required check passed."""
    all_ok = True
    for make in CHECKS:
        check = make()
        mark = "ok " if check.ok else ("!! " if check.required else "-- ")
        out(f"{mark} {check.name:12s} {check.detail}")
        if not check.ok and check.fix:
            out(f"    fix: {check.fix}")
        all_ok &= check.ok or not check.required
    out("All set." if all_ok else "Some checks failed: apply the fixes above, then run again.")
    return all_ok
