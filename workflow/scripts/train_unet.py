from hybridwing.logs import log_to_file
from hybridwing.segment.steps import train_step

log_to_file(snakemake.log[0])
train_step(
    index_path=snakemake.input.index,
    model_path=snakemake.output.model,
    metrics_path=snakemake.output.metrics,
    history_path=snakemake.output.history,
    curve_path=snakemake.output.curve,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
