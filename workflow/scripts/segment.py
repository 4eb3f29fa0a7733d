from hybridwing.logs import log_to_file
from hybridwing.segment.steps import segment_step

log_to_file(snakemake.log[0])
segment_step(
    model_path=snakemake.input.model,
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    shard=snakemake.wildcards.scatteritem,
    out_dir=snakemake.output.masks,
    qc_path=snakemake.output.qc,
    mask_settings=snakemake.params.mask_settings,
    threads=snakemake.threads,
)
