from hybridwing.logs import log_to_file
from hybridwing.segment.steps import wings_step

log_to_file(snakemake.log[0])
wings_step(
    wings_paths=list(snakemake.input.shards),
    qc_path=snakemake.input.qc,
    metadata_path=snakemake.input.metadata,
    wings_path=snakemake.output.table,
    sheet_path=snakemake.output.sheet,
)
