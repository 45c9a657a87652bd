"""The PyTorch half (Q4): ``model`` (``MultiLayerPerceptron``, depth, per-layer signal scales),
``config`` (``MLPConfig``), ``data`` (device-resident CIFAR-10, ZCA inputs), ``train`` (one epoch,
evaluate, predict, fit), ``checkpoint`` (save / load)."""
from .checkpoint import load_checkpoint, save_checkpoint
from .config import MLPConfig
from .data import TensorSplits, fast_bfloat16, load_tensor_splits, pick_device, to_tensor_images, zca_splits
from .model import MultiLayerPerceptron, build_model, hidden_layers_for_depth, layer_statistics
from .train import augment_batch, evaluate, fit, make_optimizer, predict, predict_flip_averaged, train_one_epoch

__all__ = ["MLPConfig", "MultiLayerPerceptron", "TensorSplits", "augment_batch", "build_model", "evaluate",
           "fast_bfloat16", "fit",
           "hidden_layers_for_depth", "layer_statistics", "load_checkpoint", "load_tensor_splits", "make_optimizer",
           "pick_device", "predict", "predict_flip_averaged", "save_checkpoint", "to_tensor_images",
           "train_one_epoch", "zca_splits"]
