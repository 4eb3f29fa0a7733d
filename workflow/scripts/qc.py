from hybridwing.logs import log_to_file
from hybridwing.segment.steps import qc_step

log_to_file(snakemake.log[0])
qc_step(
    shard_paths=list(snakemake.input.shards),
    teacher_index_path=snakemake.input.teacher,
    metadata_path=snakemake.input.metadata,
    pattern_dir=snakemake.params.pattern_masks,
    table_path=snakemake.output.table,
    metrics_path=snakemake.output.metrics,
)
