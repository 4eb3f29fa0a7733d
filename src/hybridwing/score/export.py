"""A code submission for the HDR challenge's ingestion program: ``model.py`` with class ``Model``
(``load()``, ``predict(PIL.Image) -> float``), the model folder, this package's source, and a
``requirements.txt``."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

import hybridwing
from hybridwing.atomic import atomic_folder
from hybridwing.score.predictor import Predictor

#: What the prediction path imports beyond the standard library; torch and torchvision are left to
#: the challenge's container, which brings a build for its GPU.
REQUIREMENTS = (
    "open_clip_torch",
    "segmentation-models-pytorch",
    "safetensors",
    "pillow",
    "numpy",
    "pandas",
    "opencv-python-headless",
    "scikit-learn",
    "tqdm",
)

MODEL_PY = '''"""hybridwing model for the HDR butterfly hybrid detection challenge (written by
`hybridwing export-submission`). predict() returns the hybrid score, max(p_hybrid, 1 - (top1 - top2)),
of a photograph: the wings are segmented and the background removed as in training."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Model:
    def __init__(self):
        self.predictor = None

    def load(self):
        sys.path.insert(0, str(HERE))
        from hybridwing.score.predictor import Predictor

        self.predictor = Predictor.load(HERE / "model")

    def predict(self, datapoint):
        return float(self.predictor.predict(datapoint.convert("RGB"))[self.predictor.inference.score])
'''


def export_submission(model_dir: str | Path, out: str | Path) -> Path:
    """Write the submission folder `out` (which must not exist yet) for the model in `model_dir`."""
    out = Path(out)
    if out.resolve().is_relative_to(Path(model_dir).resolve()):
        raise FileExistsError(
            f"{out} is inside the model folder {model_dir}: give a folder outside it (it would copy itself)"
        )
    Predictor.load(model_dir)  # refuses an incomplete or inconsistent folder before anything is written
    if out.exists():
        raise FileExistsError(f"{out} exists already: give a new folder")
    with atomic_folder(out) as partial:  # a failed export leaves nothing that blocks the next one
        shutil.copytree(model_dir, partial / "model")
        package = Path(hybridwing.__file__).parent
        shutil.copytree(package, partial / "hybridwing", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (partial / "model.py").write_text(MODEL_PY)
        (partial / "requirements.txt").write_text(
            "".join(f"{name}=={metadata.version(name)}\n" for name in REQUIREMENTS)
        )
    return out
