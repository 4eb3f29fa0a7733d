from hybridwing.logs import log_to_file
from hybridwing.synthetic.collection import SyntheticSettings, write_collection

log_to_file(snakemake.log[0])
write_collection(
    settings=SyntheticSettings.from_config(snakemake.params.settings),
    train_path=snakemake.output.train,
    dev_path=snakemake.output.dev,
    taxa_path=snakemake.output.taxa,
    images_dir=snakemake.output.images,
    masks_dir=snakemake.output.masks,
    sheet_path=snakemake.output.sheet,
)
