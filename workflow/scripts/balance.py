from hybridwing.balance.steps import balance_step
from hybridwing.logs import log_to_file

log_to_file(snakemake.log[0])
balance_step(
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    qc_path=snakemake.input.qc,
    wings_path=snakemake.input.wings,
    copies_paths=list(snakemake.input.copies),
    manifest_path=snakemake.output.manifest,
    summary_path=snakemake.output.summary,
    counts_plot=snakemake.output.counts,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
    left_out_path=snakemake.input.get("left_out"),
)
