from hybridwing.data.steps import metadata_step
from hybridwing.logs import log_to_file

log_to_file(snakemake.log[0])
metadata_step(
    snakemake.input.manifests,
    snakemake.output.metadata,
    snakemake.input.exclude[0] if snakemake.input.exclude else None,
)
