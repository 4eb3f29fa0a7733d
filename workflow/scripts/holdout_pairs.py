from hybridwing.logs import log_to_file
from hybridwing.score.unseen import holdout_pairs_step

log_to_file(snakemake.log[0])
holdout_pairs_step(
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    qc_path=snakemake.input.qc,
    wings_path=snakemake.input.wings,
    pairs_path=snakemake.output.pairs,
    thinned_path=snakemake.output.thinned,
    settings=snakemake.params.settings,
    seed=snakemake.params.seed,
)
