from hybridwing.data.steps import fetch_step
from hybridwing.logs import log_to_file

log_to_file(snakemake.log.main)
fetch_step(
    location=snakemake.params.location,
    source=snakemake.wildcards.table,
    taxa_path=snakemake.input.taxa,
    store_root=snakemake.params.store,
    manifest_path=snakemake.output.manifest,
    failures_path=snakemake.log.failures,
    settings=snakemake.params.settings,
)
