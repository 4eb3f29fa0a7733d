"""The trained model: backbone, preprocessing, the model folder and inference, shared by training and every reader."""
