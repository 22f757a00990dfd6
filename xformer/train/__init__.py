"""Training: recipes (config), optimizer and schedules (optim), the loop (trainer), checkpoints,
torchrun DDP/FSDP2 (distributed), logs (metrics), run folders (run)."""
from .config import DataConfig, EarlyStopping, Ema, ExperimentConfig, TrainConfig, load_experiment
from .run import evaluate_run, load_run, train_run
from .trainer import Trainer, TrainingDiverged

__all__ = ["DataConfig", "EarlyStopping", "Ema", "ExperimentConfig", "TrainConfig", "load_experiment", "evaluate_run",
           "load_run", "train_run", "Trainer", "TrainingDiverged"]
