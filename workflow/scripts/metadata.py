from hybridwing.data.tables import merge_manifests
from hybridwing.logs import log_to_file

log_to_file(snakemake.log[0])
merge_manifests(snakemake.input.manifests, snakemake.output.metadata)
