r"""``msadam_tensorflow.Adam``: ``mindspore.nn.Adam`` as a Keras 3 optimizer (TensorFlow backend).

.. math::
    m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
    w \leftarrow w - \alpha \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t} \frac{m}{\sqrt{v}+\epsilon}

with MindSpore's arguments (checked in its order, with its exception classes), float32 running beta
powers (``beta1_power``/``beta2_power`` optimizer variables, not ``beta**t``), ``eps`` inside the
bias correction, weight decay ``g + weight_decay * w`` for variables whose path has neither ``beta``
nor ``gamma`` (Keras's norm layers call their weights ``gamma``/``beta``, as MindSpore does), and
MindSpore's rounding: each variable's update is :func:`msadam_tensorflow.kernels.dense_update`
compiled by XLA, whether or not ``model.fit`` itself is.

``model.compile(optimizer=msadam_tensorflow.Adam(...))`` then ``model.fit`` trains with it;
``get_config``/``from_config`` and Keras checkpoints (``model.save``, ``tf.train.Checkpoint``)
round-trip it.
"""

from __future__ import annotations

import functools
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from msadam import validation
from msadam_tensorflow import kernels
from msadam_tensorflow.rounding import fma_mode, rounded

__all__ = ["Adam", "mindspore_name"]


def mindspore_name(variable: Any) -> str:
    """A Keras variable's MindSpore-style name: its path with dots (``dense/kernel`` -> ``dense.kernel``)."""
    path = getattr(variable, "path", None) or getattr(variable, "name", "")
    return str(path).split(":")[0].replace("/", ".")


def _step(w: tf.Tensor, m: tf.Tensor, v: tf.Tensor, vhat: tf.Tensor | None, g: tf.Tensor, lr: tf.Tensor,
          beta1_power: tf.Tensor, beta2_power: tf.Tensor, weight_decay: tf.Tensor | None, grad_scale: tf.Tensor | None,
          zero: tf.Tensor, beta1: tf.Tensor, beta2: tf.Tensor, eps: tf.Tensor,
          cfg: kernels.Config) -> tuple[tf.Tensor, ...]:
    """One variable's step, with ``lr_t`` from the powers already advanced (products rounded apart)."""
    one = tf.constant(1.0, tf.float32)
    lr_t = lr * tf.sqrt(one - beta2_power) / (one - beta1_power)
    s = kernels.Scalars(rounded(lr_t, zero), beta1, beta2, eps, weight_decay, grad_scale, zero)
    return kernels.dense_update(w, m, v, vhat, g, s, cfg)


@functools.cache
def _compiled_step(cfg: kernels.Config) -> Any:
    return tf.function(functools.partial(_step, cfg=cfg), jit_compile=True)


@keras.saving.register_keras_serializable(package="msadam")
class Adam(keras.optimizers.Optimizer):
    """``mindspore.nn.Adam(params, learning_rate, beta1, beta2, eps, use_locking, use_nesterov, weight_decay,
    loss_scale, use_amsgrad)`` as a Keras optimizer (see the module docstring).

    ``learning_rate``: a number or a ``keras.optimizers.schedules.LearningRateSchedule``. The
    MindSpore keyword arguments ``use_lazy``/``use_offload`` are checked as MindSpore does; other
    keyword arguments go to Keras's ``Optimizer`` (``name``, ``clipnorm``, ...).
    """

    def __init__(self, learning_rate: Any = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 use_locking: bool = False, use_nesterov: bool = False, weight_decay: float = 0.0,
                 loss_scale: float = 1.0, use_amsgrad: bool = False, name: str = "msadam_adam",
                 **kwargs: Any) -> None:
        mindspore_kwargs: dict[str, Any] = {k: kwargs.pop(k) for k in ("use_lazy", "use_offload") if k in kwargs}
        # Optimizer.__init__'s order: loss_scale, the learning rate, weight decay; then Adam's own checks.
        if isinstance(loss_scale, int):
            loss_scale = float(loss_scale)
        validation.check_value_type("loss_scale", loss_scale, (float,), "Adam")
        validation.check_positive_float("loss_scale", loss_scale, "Adam")
        if isinstance(learning_rate, float | int) and not isinstance(learning_rate, bool):
            learning_rate = validation.check_non_negative_float("learning rate", float(learning_rate), "Optimizer")
        elif not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            raise TypeError("For 'Adam', msadam_tensorflow takes a float or a keras LearningRateSchedule as "
                            f"'learning_rate', but got {type(learning_rate)}.")
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, float | int):
            raise TypeError(f"For 'Optimizer', the argument 'Weight_decay' must be int, float or Cell.but got "
                            f"{type(weight_decay)}")
        validation.check_non_negative_float("weight_decay", float(weight_decay), "Optimizer")
        flags = {"use_locking": use_locking, "use_nesterov": use_nesterov, "use_amsgrad": use_amsgrad,
                 "use_lazy": mindspore_kwargs.get("use_lazy", False),
                 "use_offload": mindspore_kwargs.get("use_offload", False)}
        validation.check_adam_args(beta1, beta2, eps, flags, mindspore_kwargs)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.use_locking, self.use_nesterov, self.use_amsgrad = use_locking, use_nesterov, use_amsgrad
        self.use_lazy, self.use_offload = flags["use_lazy"], flags["use_offload"]
        self.mindspore_weight_decay, self.loss_scale = float(weight_decay), float(loss_scale)
        self._cfg = kernels.Config(use_nesterov, use_amsgrad, False, fma_mode())

    def build(self, var_list: list[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._moment1, self._moment2 = self.add_optimizer_variables(var_list, ["moment1", "moment2"])
        self._vhat = self.add_optimizer_variables(var_list, "vhat") if self.use_amsgrad else None
        self._beta1_power = self.add_variable((), initializer="ones", dtype="float32", name="beta1_power")
        self._beta2_power = self.add_variable((), initializer="ones", dtype="float32", name="beta2_power")
        # Ungrouped MindSpore: only names without 'beta'/'gamma' decay (Optimizer._init_opt_attrs).
        self._decays = [("beta" not in mindspore_name(v) and "gamma" not in mindspore_name(v)) for v in var_list]

    def _zero(self) -> tf.Tensor:
        """An int32 zero XLA cannot constant-fold (``rounding.rounded`` needs one): ``iterations < 0``."""
        return tf.cast(tf.convert_to_tensor(self.iterations) < 0, tf.int32)

    def _powers(self) -> tuple[tf.Tensor, tf.Tensor]:
        """This step's beta powers: the stored running products times beta, each rounded to float32.

        Rounded apart (``rounding.rounded``): under an enclosing XLA compilation (``model.fit`` with
        ``jit_compile``) ``1 - beta2_power * beta2`` would otherwise become one fused multiply-add.
        """
        zero = self._zero()
        return (rounded(tf.convert_to_tensor(self._beta1_power) * np.float32(self.beta1), zero),
                rounded(tf.convert_to_tensor(self._beta2_power) * np.float32(self.beta2), zero))

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)  # the sparse strategy is not wired into Keras yet
        index = self._get_variable_index(variable)
        decay = self.mindspore_weight_decay * self.loss_scale
        weight_decay = tf.constant(np.float32(decay)) if self._decays[index] and decay > 0 else None
        grad_scale = None if self.loss_scale == 1.0 else tf.constant(np.float32(1.0 / self.loss_scale))
        beta1_power, beta2_power = self._powers()
        m, v = self._moment1[index], self._moment2[index]
        vhat = self._vhat[index] if self._vhat is not None else None
        new = _compiled_step(self._cfg)(
            tf.convert_to_tensor(variable), tf.convert_to_tensor(m), tf.convert_to_tensor(v),
            None if vhat is None else tf.convert_to_tensor(vhat), tf.cast(gradient, variable.dtype),
            tf.cast(learning_rate, tf.float32), beta1_power, beta2_power, weight_decay, grad_scale,
            self._zero(), tf.constant(np.float32(self.beta1)), tf.constant(np.float32(self.beta2)),
            tf.constant(np.float32(self.eps)))
        self.assign(variable, new[0])
        self.assign(m, new[1])
        self.assign(v, new[2])
        if vhat is not None:
            self.assign(vhat, new[3])

    def apply(self, grads: Any, trainable_variables: Any = None) -> None:
        grads = list(grads)
        if not grads:
            return
        beta1_power, beta2_power = self._powers() if self.built else (None, None)
        super().apply(grads, trainable_variables)
        if beta1_power is None:  # built by this call: the powers read before it would be missing
            beta1_power, beta2_power = tf.ones(()) * np.float32(self.beta1), tf.ones(()) * np.float32(self.beta2)
        self._beta1_power.assign(beta1_power)
        self._beta2_power.assign(beta2_power)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update({"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "use_locking": self.use_locking,
                       "use_nesterov": self.use_nesterov, "weight_decay": self.mindspore_weight_decay,
                       "loss_scale": self.loss_scale, "use_amsgrad": self.use_amsgrad, "use_lazy": self.use_lazy,
                       "use_offload": self.use_offload})
        return config
