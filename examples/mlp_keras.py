# --- framework: begin ---
"""``mlp_mindspore.py`` ported to Keras 3 (TensorFlow): the model, forward and gradients are Keras's;
the optimizer, learning rate, loss scaling and checkpoints are MindSpore's text, run by ``msadam_compat``.

The model's ``trainable_variables`` are wrapped in ``ms.Parameter`` under their MindSpore-style
names (``msadam_tensorflow.names.mindspore_name``: ``mlp.fc1.kernel``, ``mlp.norm.gamma``, ...) and updated
in place by ``nn.Adam``. Keras keeps a ``Dense`` kernel as ``(in, out)`` and calls it ``kernel``, so
this script's checkpoints hold the same numbers as MindSpore's under other names and layouts: they
resume this script, not ``mlp_mindspore.py``.

    python examples/mlp_keras.py --steps 40 --ckpt-dir ckpt
    python examples/mlp_keras.py --resume ckpt/mlp-40.ckpt
"""

from __future__ import annotations

import argparse
import os

import keras
import msadam_compat as ms
import numpy as np
import tensorflow as tf
from msadam_compat import nn
from msadam_tensorflow.names import mindspore_name

# --- framework: end ---

SEED = 0
N_SAMPLES, N_FEATURES, HIDDEN, N_CLASSES = 256, 20, 64, 3
BATCH_SIZE = 32
STEPS_PER_EPOCH = N_SAMPLES // BATCH_SIZE
EPOCHS = 10
TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH
WARMUP_STEPS = 5
MAX_LR, MIN_LR = 0.01, 0.0005
WEIGHT_DECAY = 1e-3
LAYER_NORM_EPSILON = 1e-7  # mindspore.nn.LayerNorm's default


def make_dataset() -> tuple[np.ndarray, np.ndarray]:
    """``N_SAMPLES`` points in ``N_FEATURES`` dimensions, labelled by a noisy random linear teacher."""
    rng = np.random.default_rng(SEED)
    features = rng.standard_normal((N_SAMPLES, N_FEATURES)).astype(np.float32)
    teacher = rng.standard_normal((N_FEATURES, N_CLASSES))
    noise = 0.5 * rng.standard_normal((N_SAMPLES, N_CLASSES))
    labels = np.argmax(features @ teacher + noise, axis=1).astype(np.int32)
    return features, labels


def initial_weights() -> dict[str, np.ndarray]:
    """The Dense layers' starting weights, in MindSpore's layout (weight: ``(out, in)``)."""
    rng = np.random.default_rng(SEED + 1)

    def dense(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        bound = 1.0 / np.sqrt(n_in)
        return (rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32),
                rng.uniform(-bound, bound, n_out).astype(np.float32))

    fc1_weight, fc1_bias = dense(N_FEATURES, HIDDEN)
    fc2_weight, fc2_bias = dense(HIDDEN, N_CLASSES)
    return {"fc1.weight": fc1_weight, "fc1.bias": fc1_bias, "fc2.weight": fc2_weight, "fc2.bias": fc2_bias}


def get_batch(features: np.ndarray, labels: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch of global step ``step``: each epoch is a fresh permutation (seeded by the epoch)."""
    epoch, index = divmod(step, STEPS_PER_EPOCH)
    order = np.random.default_rng([SEED, epoch]).permutation(N_SAMPLES)
    rows = order[index * BATCH_SIZE:(index + 1) * BATCH_SIZE]
    return features[rows], labels[rows]


# --- framework: begin ---
def build_mlp(weights: dict[str, np.ndarray]) -> keras.Model:
    """Dense -> LayerNormalization -> ReLU -> Dense; Keras's Dense kernel is MindSpore's weight transposed."""
    model = keras.Sequential([keras.Input((N_FEATURES,)),
                              keras.layers.Dense(HIDDEN, name="fc1"),
                              keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm"),
                              keras.layers.ReLU(),
                              keras.layers.Dense(N_CLASSES, name="fc2")], name="mlp")
    for layer in ("fc1", "fc2"):
        model.get_layer(layer).set_weights([weights[f"{layer}.weight"].T, weights[f"{layer}.bias"]])
    return model


# --- framework: end ---


def main(steps: int = TOTAL_STEPS, ckpt_dir: str | None = None, resume: str | None = None,
         loss_scale: str = "dynamic") -> list[float]:
    """Train until global step ``steps`` (of the ``TOTAL_STEPS`` schedule); return the loss of each step run.

    ``ckpt_dir``: save ``mlp-<step>.ckpt`` there every epoch and at the last step. ``resume``: a
    checkpoint to continue from. ``loss_scale``: ``"dynamic"`` (``ms.amp.DynamicLossScaler``) or
    ``"fixed"`` (``FixedLossScaleManager``, removed by Adam's ``loss_scale``).
    """
    # --- framework: begin ---
    model = build_mlp(initial_weights())
    # A Keras 3 variable is not a tf.Variable: ms.Parameter(variable) would silently copy it to the NumPy
    # backend (the model would never be updated). Its tf.Variable is variable.value.
    params = [ms.Parameter(variable.value, name=mindspore_name(variable)) for variable in model.trainable_variables]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # --- framework: end ---

    learning_rate = (nn.warmup_lr(MAX_LR, WARMUP_STEPS, 1, WARMUP_STEPS)
                     + nn.cosine_decay_lr(MIN_LR, MAX_LR, TOTAL_STEPS - WARMUP_STEPS, 1, TOTAL_STEPS - WARMUP_STEPS))
    if loss_scale == "dynamic":
        # MindSpore's functional mixed-precision recipe: scale the loss, unscale finite gradients, adjust.
        loss_scaler = ms.amp.DynamicLossScaler(scale_value=2**10, scale_factor=2, scale_window=4)
        optimizer_loss_scale = 1.0
    elif loss_scale == "fixed":
        # What Model(..., loss_scale_manager=FixedLossScaleManager(...)) does: Adam divides the scale out.
        manager = ms.FixedLossScaleManager(1024.0, drop_overflow_update=False)
        loss_scaler = ms.amp.StaticLossScaler(manager.get_loss_scale())
        optimizer_loss_scale = manager.get_loss_scale()
    else:
        raise ValueError(f"loss_scale must be 'dynamic' or 'fixed', not {loss_scale!r}")
    optimizer = nn.Adam(params, learning_rate=learning_rate, weight_decay=WEIGHT_DECAY,
                        loss_scale=optimizer_loss_scale)

    start = 0
    if resume:
        param_dict = ms.load_checkpoint(resume)
        param_not_load, _ = ms.load_param_into_net(optimizer, param_dict)
        if param_not_load:
            raise RuntimeError(f"{resume} lacks {param_not_load}")
        start = int(param_dict["step_num"].asnumpy())
        if isinstance(loss_scaler, ms.amp.DynamicLossScaler):
            loss_scaler.scale_value.set_data(param_dict["scale_value"])
            loss_scaler.counter.set_data(param_dict["counter"])

    # --- framework: begin ---
    def forward_fn(data, label):
        loss = loss_fn(label, model(data, training=True))
        return loss_scaler.scale(loss)

    def grad_fn(data, label):
        with tf.GradientTape() as tape:
            loss = forward_fn(data, label)
        return loss, tuple(tape.gradient(loss, model.trainable_variables))
    # --- framework: end ---

    def train_step(data, label):
        loss, grads = grad_fn(data, label)
        loss = loss_scaler.unscale(loss)
        is_finite = ms.amp.all_finite(grads)
        if optimizer_loss_scale == 1.0:
            if is_finite:
                grads = loss_scaler.unscale(grads)
                optimizer(grads)
            loss_scaler.adjust(is_finite)
        else:
            optimizer(grads)  # drop_overflow_update=False: every step is applied
        return loss

    features, labels = make_dataset()
    losses = []
    for step in range(start, steps):
        batch_features, batch_labels = get_batch(features, labels, step)
        # --- framework: begin ---
        data, label = tf.constant(batch_features), tf.constant(batch_labels)
        # --- framework: end ---
        loss = train_step(data, label)
        losses.append(float(loss))
        if (step + 1) % STEPS_PER_EPOCH == 0 or step + 1 == steps:
            print(f"step {step + 1}: loss {losses[-1]:.6f}")
        if ckpt_dir and ((step + 1) % STEPS_PER_EPOCH == 0 or step + 1 == steps):
            append_dict = {"step_num": step + 1}
            if isinstance(loss_scaler, ms.amp.DynamicLossScaler):
                append_dict.update(scale_value=loss_scaler.scale_value, counter=loss_scaler.counter)
            os.makedirs(ckpt_dir, exist_ok=True)
            ms.save_checkpoint(optimizer, os.path.join(ckpt_dir, f"mlp-{step + 1}.ckpt"), append_dict=append_dict)
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=TOTAL_STEPS, help="train until this global step")
    parser.add_argument("--ckpt-dir", default=None, help="save mlp-<step>.ckpt here every epoch")
    parser.add_argument("--resume", default=None, help="a checkpoint to continue from")
    parser.add_argument("--loss-scale", choices=["dynamic", "fixed"], default="dynamic")
    args = parser.parse_args()
    main(args.steps, args.ckpt_dir, args.resume, args.loss_scale)
