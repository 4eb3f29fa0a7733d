from hybridwing.logs import log_to_file
from hybridwing.segment.steps import teacher_step

log_to_file(snakemake.log[0])
teacher_step(
    metadata_path=snakemake.input.metadata,
    splits_path=snakemake.input.splits,
    shard=snakemake.wildcards.scatteritem,
    out_dir=snakemake.output.masks,
    index_path=snakemake.output.index,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
    every_table=snakemake.params.every_table,
)
