"""Wing segmentation: teacher masks, the distilled U-Net, background removal."""
