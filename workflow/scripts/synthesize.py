from hybridwing.logs import log_to_file
from hybridwing.synthetic.steps import synthesize_step

log_to_file(snakemake.log[0])
synthesize_step(
    settings=snakemake.params.settings,
    train_path=snakemake.output.train,
    dev_path=snakemake.output.dev,
    taxa_path=snakemake.output.taxa,
    images_dir=snakemake.output.images,
    masks_dir=snakemake.output.masks,
    sheet_path=snakemake.output.sheet,
)
