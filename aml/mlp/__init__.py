"""The PyTorch half (Q4): ``MultiLayerPerceptron``, a device-resident CIFAR-10 data path, and small
train / evaluate functions with explicit arguments. One module a job:

``model`` (the network, depth), ``config`` (``MLPConfig``), ``data`` (tensors, device),
``augment`` (flips and crops of a batch), ``train`` (optimiser, epoch, evaluate, fit),
``checkpoint`` (save / load), ``diagnostics`` (per-layer signal scales), ``whiten`` (ZCA, the GPU budget).
"""
from .augment import augment_batch
from .checkpoint import load_checkpoint, save_checkpoint
from .config import MLPConfig
from .data import TensorSplits, load_tensor_splits, pick_device, to_tensor_images
from .diagnostics import layer_statistics
from .model import MultiLayerPerceptron, hidden_layers_for_depth
from .train import (
    build_model,
    evaluate,
    evaluate_loss_and_accuracy,
    fit,
    make_optimizer,
    predict,
    predict_flip_averaged,
    train_one_epoch,
)
from .whiten import fit_zca, zca_splits

__all__ = ["MLPConfig", "MultiLayerPerceptron", "TensorSplits", "augment_batch", "build_model", "evaluate",
           "evaluate_loss_and_accuracy", "fit", "fit_zca", "hidden_layers_for_depth", "layer_statistics",
           "load_checkpoint", "load_tensor_splits", "make_optimizer", "pick_device", "predict", "predict_flip_averaged",
           "save_checkpoint",
           "to_tensor_images", "train_one_epoch", "zca_splits"]
