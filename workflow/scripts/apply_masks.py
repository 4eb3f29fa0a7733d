from hybridwing.logs import log_to_file
from hybridwing.segment.steps import apply_step

log_to_file(snakemake.log[0])
apply_step(
    qc_path=snakemake.input.qc,
    metadata_path=snakemake.input.metadata,
    out_dir=snakemake.output.wings,
    wings_path=snakemake.output.table,
    mask_settings=snakemake.params.mask_settings,
)
