from hybridwing.logs import log_to_file
from hybridwing.score.steps import score_step

log_to_file(snakemake.log[0])
score_step(
    model_dir=snakemake.input.model,
    wings_path=snakemake.input.wings,
    qc_path=snakemake.input.qc,
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    table=snakemake.wildcards.subset,
    predictions_path=snakemake.output.predictions,
    specimens_path=snakemake.output.specimens,
    metrics_path=snakemake.output.metrics,
    submission_path=snakemake.output.submission,
    curves_path=snakemake.output.curves,
    histogram_path=snakemake.output.histogram,
    novelty_path=snakemake.output.novelty,
    explanations_dir=snakemake.output.explanations,
    explanation_sheet_path=snakemake.output.explanation_sheet,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
