from hybridwing.data.steps import split_step
from hybridwing.logs import log_to_file

log_to_file(snakemake.log[0])
split_step(
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.output.splits,
    duplicates_path=snakemake.output.duplicates,
    summary_path=snakemake.output.summary,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
)
