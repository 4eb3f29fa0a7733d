from hybridwing.balance.steps import augment_step
from hybridwing.logs import log_to_file

log_to_file(snakemake.log[0])
augment_step(
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    qc_path=snakemake.input.qc,
    wings_path=snakemake.input.wings,
    shard=snakemake.wildcards.scatteritem,
    out_dir=snakemake.output.images,
    copies_path=snakemake.output.copies,
    settings=snakemake.params.settings,
    mask_settings=snakemake.params.mask_settings,
    threads=snakemake.threads,
    left_out_path=snakemake.input.get("left_out"),
)
