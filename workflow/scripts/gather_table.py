from hybridwing.logs import log_to_file
from hybridwing.shards import gather_step

log_to_file(snakemake.log[0])
gather_step(shard_paths=list(snakemake.input.shards), out_path=snakemake.output[0])
