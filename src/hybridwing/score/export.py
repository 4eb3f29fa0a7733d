"""A code submission for the HDR challenge's ingestion program: ``model.py`` with class ``Model``
(``load()``, ``predict(PIL.Image) -> float``), the networks as `torch.export` programs, the modules of
this package that prediction needs, and a ``requirements.txt`` of packages on the challenge's
whitelist only (spelled as it spells them)."""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path

import torch

from hybridwing.atomic import atomic_folder
from hybridwing.imports import PACKAGE_ROOT, distributions_of, module_imports, package_closure, third_party
from hybridwing.model.inference import EXPORTED_SEGMENTER, EXPORTED_SETTINGS, PhotographClassifier
from hybridwing.score.predictor import Predictor

#: The packages the challenge's ingestion program installs (its whitelist.txt, in its spelling).
WHITELIST = (
    "pytorch",
    "tensorflow",
    "numpy",
    "scikit-learn",
    "keras",
    "torch",
    "open-clip-torch",
    "torchvision",
    "transformers",
    "pandas",
    "Pillow",
    "scipy",
    "tqdm",
    "pyarrow",
    "duckdb",
    "matplotlib",
    "xgboost",
    "nflows",
    "lightgbm",
    "seaborn",
    "iminuit",
    "timm",
    "torchaudio",
    "catboost",
    "plotly",
    "opencv-python-headless",
    "albumentations",
)
#: Left to the challenge's container, which brings a build for its GPU.
PROVIDED = ("torch", "torchvision")
#: The module whose closure the submission carries.
RUNTIME = "hybridwing.model.inference"

MODEL_PY = '''"""hybridwing model for the HDR butterfly hybrid detection challenge (written by
`hybridwing export-submission`). predict() returns the model's hybrid score of a photograph: the
wings are segmented and the background removed as in training, then the classifiers' probabilities
(members, mirror image, temperature) give the score named in settings.json."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Model:
    def __init__(self):
        self.classifier = None

    def load(self):
        sys.path.insert(0, str(HERE))
        from hybridwing.model.inference import PhotographClassifier

        self.classifier = PhotographClassifier.from_exported(HERE)

    def predict(self, datapoint):
        return float(self.classifier.predict(datapoint.convert("RGB"))[self.classifier.inference.score])
'''


class NotOnWhitelist(ValueError):
    """The submission would need a package the challenge does not install."""


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(modules: set[str]) -> list[str]:
    """``Name==version`` lines, in the whitelist's spelling, for the distributions that provide the
    third-party `modules` (less those the container brings)."""
    spelling = {normalised(name): name for name in WHITELIST}
    lines = []
    for module, distributions in distributions_of(third_party(modules)).items():
        allowed = [spelling[normalised(d)] for d in distributions if normalised(d) in spelling]
        if not allowed:
            raise NotOnWhitelist(
                f"the submission imports {module} ({', '.join(distributions) or 'not installed'}), "
                "which is not on the challenge's whitelist"
            )
        lines += [f"{name}=={metadata.version(name)}" for name in allowed if normalised(name) not in PROVIDED]
    return sorted(set(lines), key=str.lower)


def export_programs(classifier: PhotographClassifier, out: Path) -> None:
    """Each member and the segmenter as a `torch.export` program for one image, and their settings."""
    settings = classifier.exported_settings()
    networks = dict(zip(settings["members"], classifier.classifiers)) | {EXPORTED_SEGMENTER: classifier.segmenter}
    sizes = dict.fromkeys(settings["members"], classifier.size) | {EXPORTED_SEGMENTER: classifier.segmenter_size}
    for name, network in networks.items():
        example = torch.zeros(1, 3, sizes[name], sizes[name])
        network = network.eval().to(memory_format=torch.contiguous_format)  # the archive stores contiguous weights
        torch.export.save(torch.export.export(network, (example,)), out / name)
    (out / EXPORTED_SETTINGS).write_text(json.dumps(settings, indent=1))


def export_submission(model_dir: str | Path, out: str | Path) -> Path:
    """Write the submission folder `out` (which must not exist yet) for the model in `model_dir`."""
    out = Path(out)
    if out.resolve().is_relative_to(Path(model_dir).resolve()):
        raise FileExistsError(
            f"{out} is inside the model folder {model_dir}: give a folder outside it (it would copy itself)"
        )
    predictor = Predictor.load(model_dir, torch.device("cpu"))  # refuses a broken folder before anything is written
    if out.exists():
        raise FileExistsError(f"{out} exists already: give a new folder")
    with atomic_folder(out, replace=False) as partial:  # a failed export leaves nothing that blocks the next one
        modules: set[str] = set()
        for source in package_closure(RUNTIME):
            target = partial / PACKAGE_ROOT.name / source.relative_to(PACKAGE_ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            modules |= module_imports(source)
        export_programs(predictor, partial)
        (partial / "model.py").write_text(MODEL_PY)
        modules |= module_imports(partial / "model.py")
        (partial / "requirements.txt").write_text("".join(f"{line}\n" for line in requirements(modules)))
    return out
