"""Test-wide settings, also seen by the notebook kernels that nbval starts (they inherit
this process's environment)."""

import os
import tempfile
from pathlib import Path

# Every test and notebook run is the quick version (see gptlab.notebook.budget).
os.environ.setdefault("GPTLAB_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# Checkpoints lessons save go to a fresh folder per test process: tests never replace a
# learner's trained model, and parallel workers never share a folder.
os.environ["GPTLAB_RUNS_DIR"] = tempfile.mkdtemp(prefix="gptlab-test-runs-")
# pytest -n auto already runs one test process per core: one torch thread each (kernels too)
# avoids oversubscribed cores, where two spinning threads run small steps 5-10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Reference data beside the checkout (CI sets this itself); never committed to the repo.
_shared = Path(__file__).resolve().parent.parent / "shared" / "data"
if "GPTLAB_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["GPTLAB_DATA_DIR"] = str(_shared)

try:
    from hypothesis import settings

    # The machine is shared and noisy: property tests check behaviour, never time.
    settings.register_profile("gptlab", deadline=None, max_examples=100)
    settings.load_profile("gptlab")
except ImportError:  # hypothesis is a dev dependency
    pass
