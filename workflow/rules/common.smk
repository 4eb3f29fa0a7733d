import re
import sys
from pathlib import Path

#: The library of this checkout, after any other on the path (an install, PYTHONPATH): Snakemake
#: puts this process's search path on each job's, so jobs in an environment of envs/*.yaml or a
#: container, which hold the library's dependencies and never a copy of it, import it from here.
sys.path.append(str(Path(workflow.current_basedir).parents[1] / "src"))

from snakemake.utils import validate

from hybridwing.config import (
    check_config_files,
    check_dataset,
    check_schema,
    check_settings,
    check_tables,
    check_trunk_weights,
    dataset_taxa,
    fetched_tables,
    from_checkout,
    is_synthetic,
    review_round,
    scored_tables,
)
from hybridwing.data.fetch import is_url
from hybridwing.digest import library_digest
from hybridwing.pretrained import resolve_trunk_weights
from hybridwing.segment.mask_settings import MaskSettings


#: workflow/ of this checkout, wherever the run's working directory is (it differs when another
#: workflow imports this one as a module).
WORKFLOW_DIR = Path(workflow.current_basedir).parent
check_config_files(workflow.configfiles)
check_schema(config, WORKFLOW_DIR / "schemas/config.schema.yaml")
validate(config, WORKFLOW_DIR / "schemas/config.schema.yaml")  # fills in the defaults
config["dataset"]["taxa"] = from_checkout(config["dataset"]["taxa"], WORKFLOW_DIR.parent)
check_dataset(config)
check_settings(config, WORKFLOW_DIR / "schemas/config.schema.yaml")
if workflow.is_main_process:
    check_trunk_weights(config["finetune"], Path(".snakemake/hybridwing/trunk_weights_checked"))
TABLES = fetched_tables(config)
TAXA = dataset_taxa(config)
if workflow.is_main_process:
    check_tables(TABLES, TAXA)
SCORED = scored_tables(config)
EMBEDDED = ["train", *SCORED]
ROUND = review_round(config)


wildcard_constraints:
    table="|".join(map(re.escape, TABLES)),


def library_code(script):
    """The digest of the hybridwing code that workflow/scripts/`script` runs, as the rule's param
    ``code``: a change in the library reruns the rules whose code it is (and retrains instead of
    resuming), not only a change in the script."""
    return library_digest(WORKFLOW_DIR / "scripts" / script)


def table_file(wildcards):
    """The table as an input file when it is local, so editing (or generating) it reruns its fetch."""
    location = TABLES[wildcards.table]
    return [] if is_url(location) else [location]


def trunk_weights_file():
    """The pretrained trunk weights' file (finetune.trunk_weights) as an input, so that another file
    at that path retrains; a missing file or package stops the run before any job."""
    weights = config["finetune"].get("trunk_weights")
    return [str(resolve_trunk_weights(weights["path"]))] if weights else []


def training_state(name):
    """What training rule `name` keeps across interruptions, outside results/ (Snakemake deletes a
    failed job's outputs, never these): its checkpoint and its token cache, as the rule's params."""
    return {"checkpoint": f"resources/checkpoints/{name}.pt", "token_cache": f"resources/cache/{name}"}


def holdout_manifest():
    """The held-out model's balanced set: the shared one, or, when holdout.thin_parents thins the
    real crosses' parents, one balanced from the TRAIN photographs left to them."""
    thinned = config["holdout"]["thin_parents"]
    return rules.balance_holdout.output.manifest if thinned else rules.balance.output.manifest


def holdout_outputs():
    """The held-out-cross validation (a second, held-out model), when holdout.pairs asks for it."""
    return rules.holdout_score.output if config["holdout"]["pairs"] else []


def synthetic_outputs():
    """What a run on the synthetic collection shows beyond the pipeline's results: its sample sheet."""
    return [rules.synthesize.output.sheet] if is_synthetic(config) else []


PATTERN_MASKS = config["dataset"].get("pattern_masks", "")


def pattern_masks_input(wildcards):
    """The folder of colour-pattern maps, when configured, so QC reruns when it changes."""
    return [PATTERN_MASKS] if PATTERN_MASKS else []


def coverage_outputs():
    """The coverage figures, made only when pattern maps are configured."""
    return rules.coverage_figures.output if PATTERN_MASKS else []


def teacher_settings():
    """The teacher block; with a synthetic dataset, provided masks default to its ground truth."""
    settings = dict(config["teacher"])
    if settings["method"] == "provided" and not settings.get("masks_dir"):
        if not is_synthetic(config):
            raise ValueError("config key teacher.masks_dir is required for teacher.method: provided")
        settings["masks_dir"] = str(rules.synthesize.output.masks)
    return settings


def provided_masks(wildcards):
    """The folder of provided masks, so the teacher reruns when it changes."""
    settings = teacher_settings()
    return [settings["masks_dir"]] if settings["method"] == "provided" else []


def review_settings(*keys):
    """The review block's `keys`: each rule gets only what it uses, so a change reruns only it."""
    return {key: config["review"][key] for key in keys}


def mask_settings(part):
    """The mask block's keys that `part` (segmentation, background or all) depends on."""
    return MaskSettings.used_by(config["mask"], part)


def exclude_input(wildcards):
    """The exclude table, when configured, so editing it reruns the metadata."""
    return [config["dataset"]["exclude"]] if config["dataset"].get("exclude") else []


def reviewed_labels_input(wildcards):
    """The fetched reviewed labels, when configured: the rounds rule counts them."""
    return [rules.fetch.output.manifest.format(table="extra_labels")] if "extra_labels" in TABLES else []


def per_table_figures(pattern, caption, subcategory, figure):
    """One report figure per embedded table from one job, named ``{stem}_{table}`` (as
    `table_outputs` in review/steps.py reads them back)."""
    stem = Path(pattern).stem
    return {
        f"{stem}_{table}": report(
            pattern.format(table=table),
            caption=caption,
            category="5. Review",
            subcategory=subcategory,
            labels={"table": table, "figure": figure},
        )
        for table in EMBEDDED
    }
