from hybridwing.logs import log_to_file
from hybridwing.review.rounds import rounds_step

log_to_file(snakemake.log[0])
rounds_step(
    round_name=snakemake.params.round,
    score_paths=list(snakemake.input.scores),
    embed_paths=list(snakemake.input.embed),
    triage_paths=list(snakemake.input.triage),
    extra_labels_path=snakemake.input.extra_labels[0] if snakemake.input.extra_labels else None,
    exclude_path=snakemake.input.exclude[0] if snakemake.input.exclude else None,
    record_path=snakemake.output.record,
    table_path=snakemake.output.table,
    figure_path=snakemake.output.figure,
    history_path=snakemake.params.history,
)
