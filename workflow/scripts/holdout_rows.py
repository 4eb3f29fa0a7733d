from hybridwing.holdout.rows import rows_step
from hybridwing.logs import log_to_file

log_to_file(snakemake.log[0])
rows_step(
    manifest_path=snakemake.input.manifest,
    pairs_path=snakemake.input.pairs,
    held_out_path=snakemake.output.held_out,
)
