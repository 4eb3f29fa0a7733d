from hybridwing.holdout.steps import score_step
from hybridwing.logs import log_to_file

log_to_file(snakemake.log[0])
score_step(
    model_dir=snakemake.input.model,
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    qc_path=snakemake.input.qc,
    wings_path=snakemake.input.wings,
    pairs_path=snakemake.input.pairs,
    images_dir=snakemake.output.images,
    predictions_path=snakemake.output.predictions,
    metrics_path=snakemake.output.metrics,
    figure_path=snakemake.output.figure,
    settings=snakemake.params.settings,
    mask_settings=snakemake.params.mask_settings,
    batch_size=snakemake.params.batch_size,
)
