from hybridwing.holdout.steps import pairs_step
from hybridwing.logs import log_to_file

log_to_file(snakemake.log[0])
pairs_step(
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    qc_path=snakemake.input.qc,
    wings_path=snakemake.input.wings,
    pairs_path=snakemake.output.pairs,
    thinned_path=snakemake.output.thinned,
    settings=snakemake.params.settings,
)
