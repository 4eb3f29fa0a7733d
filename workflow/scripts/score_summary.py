from hybridwing.logs import log_to_file
from hybridwing.score.summary import summary_step

log_to_file(snakemake.log[0])
summary_step(
    metrics_paths=list(snakemake.input.metrics),
    finetune_metrics_path=snakemake.input.finetune,
    duplicates_path=snakemake.input.duplicates,
    table_path=snakemake.output.table,
    html_path=snakemake.output.html,
    warning_paths=list(snakemake.input.warnings),
)
