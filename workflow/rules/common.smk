import re

from hybridwing.config import check_dataset_files, dataset_tables
from hybridwing.data.fetch import is_url


check_dataset_files(config)
TABLES = dataset_tables(config)


wildcard_constraints:
    table="|".join(map(re.escape, TABLES)),


def table_file(wildcards):
    """The table as an input file when it is local, so editing it reruns its fetch."""
    location = TABLES[wildcards.table]
    return [] if is_url(location) else [location]
