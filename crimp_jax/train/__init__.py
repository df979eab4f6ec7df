"""Training: the float stage and the CRIMP stage (`pipeline.train_and_evaluate`), the loop,
checkpoints, optimizers and the analysis steps after training."""
