from hybridwing.data.fetch import fetch_to_manifest
from hybridwing.logs import log_to_file

log_to_file(snakemake.log.main)
fetch_to_manifest(
    location=snakemake.params.location,
    source=snakemake.wildcards.table,
    taxa_path=snakemake.input.taxa,
    store_root=snakemake.params.store,
    manifest_path=snakemake.output.manifest,
    failures_path=snakemake.log.failures,
    settings=snakemake.params.settings,
)
