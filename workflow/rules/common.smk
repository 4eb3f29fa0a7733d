import re

from hybridwing.config import check_dataset, dataset_taxa, dataset_tables, is_synthetic
from hybridwing.data.fetch import is_url


check_dataset(config)
TABLES = dataset_tables(config)
TAXA = dataset_taxa(config)


wildcard_constraints:
    table="|".join(map(re.escape, TABLES)),


def table_file(wildcards):
    """The table as an input file when it is local, so editing (or generating) it reruns its fetch."""
    location = TABLES[wildcards.table]
    return [] if is_url(location) else [location]


def synthetic_outputs():
    """What a run on the synthetic collection shows beyond the pipeline's results: its sample sheet."""
    return [rules.synthesize.output.sheet] if is_synthetic(config) else []
