r"""``msadam_tensorflow.Adam``: ``mindspore.nn.Adam`` as a Keras 3 optimizer (TensorFlow backend).

```text
m = beta1 * m + (1 - beta1) * g
v = beta2 * v + (1 - beta2) * g * g
w = w - learning_rate * sqrt(1 - beta2_power) / (1 - beta1_power) * m / (sqrt(v) + eps)
```

with MindSpore's arguments (checked in its order, with its exception classes), float32 running beta
powers (``beta1_power``/``beta2_power`` optimizer variables, not ``beta**t``), ``eps`` inside the
bias correction, weight decay ``g + weight_decay * w`` for variables whose MindSpore name
([`msadam_tensorflow.mindspore_name`][msadam_tensorflow.names.mindspore_name]: the path, norm and embedding weights
renamed) has neither ``beta`` nor ``gamma``, and MindSpore's rounding: each variable's dense update is
``msadam_tensorflow.kernels.dense_update`` compiled by XLA, whether or not ``model.fit`` itself is.

Row-sparse gradients (the ``tf.IndexedSlices`` of an ``Embedding`` or ``tf.gather``) take MindSpore's
sparse strategy (``msadam_tensorflow.kernels.sparse_step``): ``use_lazy`` updates only the
touched rows, ``target``/``unique`` choose the path as ``opt.target``/``opt.unique`` do. Learning
rates: a number, a Keras schedule, or MindSpore's dynamic kinds (a list, a 1-D array or Tensor, an
``msadam`` schedule:
[`msadam_tensorflow.MindSporeLearningRate`][msadam_tensorflow.learning_rate.MindSporeLearningRate]).

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
from msadam.backend import SparsePath
from msadam.kernel_dtypes import check_parameter
from msadam.sparse import SparseStrategy, check_target, check_unique
from msadam_tensorflow import kernels, steps
from msadam_tensorflow.learning_rate import MindSporeLearningRate, is_dynamic
from msadam_tensorflow.names import NameSource, mindspore_name, name_function, variable_path
from msadam_tensorflow.rounding import fma_mode, rounded

__all__ = ["Adam", "mindspore_name"]


def _step(w: tf.Tensor, m: tf.Tensor, v: tf.Tensor, vhat: tf.Tensor | None, g: tf.Tensor, s: kernels.Scalars,
          cfg: kernels.Config) -> tuple[tf.Tensor, ...]:
    return kernels.dense_update(w, m, v, vhat, g, s, cfg)


def _tf_variable(variable: Any) -> Any:
    """The ``tf.Variable`` behind a Keras variable (its ``value``), for the in-place sparse ops."""
    return variable.value if isinstance(variable, keras.Variable) else variable


@functools.cache
def _compiled_step(cfg: kernels.Config) -> Any:
    return tf.function(functools.partial(_step, cfg=cfg), jit_compile=True)


def _keras_learning_rate(learning_rate: Any) -> Any:
    """``Optimizer._preprocess_single_lr``'s checks; MindSpore's dynamic kinds become a Keras schedule."""
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        return learning_rate
    if isinstance(learning_rate, bool | float | int):
        return validation.check_non_negative_float("learning rate", float(learning_rate), "Optimizer")
    if isinstance(learning_rate, tf.Tensor | tf.Variable) and len(learning_rate.shape) == 0:
        return float(learning_rate.numpy())  # a 0-d Tensor is a fixed rate, unchecked (as MindSpore)
    if is_dynamic(learning_rate):
        return MindSporeLearningRate(learning_rate)
    return float(np.asarray(learning_rate, np.float32))  # an msadam 0-d Tensor (is_dynamic checked the rest)


@keras.saving.register_keras_serializable(package="msadam")
class Adam(keras.optimizers.Optimizer):
    """``mindspore.nn.Adam(params, learning_rate, beta1, beta2, eps, use_locking, use_nesterov, weight_decay,
    loss_scale, use_amsgrad)`` as a Keras optimizer (see the module docstring).

    ``learning_rate``: a number, a ``keras.optimizers.schedules.LearningRateSchedule``, or one of
    MindSpore's dynamic kinds (a list, a 1-D array or Tensor, an ``msadam`` ``LearningRateSchedule``).
    ``use_lazy``/``use_offload`` are checked as MindSpore does. ``target`` (``'CPU'``, ``'GPU'``,
    ``'Ascend'``) and ``unique`` choose the sparse path as ``opt.target``/``opt.unique`` do (default:
    the composite path). ``names``: a variable's MindSpore name for the ``beta``/``gamma`` filter, as a
    mapping from path to name or a function of the variable (default
    [`msadam_tensorflow.mindspore_name`][msadam_tensorflow.names.mindspore_name]); Keras's ``exclude_from_weight_decay``
    also applies. Other keyword arguments go to Keras's ``Optimizer`` (``name``, ``clipnorm``, ...).
    """

    def __init__(self, learning_rate: Any = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 use_locking: bool = False, use_nesterov: bool = False, weight_decay: float = 0.0,
                 loss_scale: float = 1.0, use_amsgrad: bool = False, name: str = "msadam_adam",
                 target: str | None = None, unique: bool = True, names: NameSource | None = None,
                 **kwargs: Any) -> None:
        mindspore_kwargs: dict[str, Any] = {k: kwargs.pop(k) for k in ("use_lazy", "use_offload") if k in kwargs}
        # Optimizer.__init__'s order: loss_scale, the learning rate, weight decay; then Adam's own checks.
        if isinstance(loss_scale, int):
            loss_scale = float(loss_scale)
        validation.check_value_type("loss_scale", loss_scale, (float,), "Adam")
        validation.check_positive_float("loss_scale", loss_scale, "Adam")
        learning_rate = _keras_learning_rate(learning_rate)
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, float | int):
            raise TypeError(f"For 'Optimizer', the argument 'Weight_decay' must be int, float or Cell.but got "
                            f"{type(weight_decay)}")
        validation.check_non_negative_float("weight_decay", float(weight_decay), "Optimizer")
        flags = {"use_locking": use_locking, "use_nesterov": use_nesterov, "use_amsgrad": use_amsgrad,
                 "use_lazy": mindspore_kwargs.get("use_lazy", False),
                 "use_offload": mindspore_kwargs.get("use_offload", False)}
        validation.check_adam_args(beta1, beta2, eps, flags, mindspore_kwargs)
        sparse = SparseStrategy(check_target(target), True, check_unique(unique)) if target is not None \
            else SparseStrategy(unique=check_unique(unique))
        name_of = name_function(names)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._name_of = name_of
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.use_locking, self.use_nesterov, self.use_amsgrad = use_locking, use_nesterov, use_amsgrad
        self.use_lazy, self.use_offload = flags["use_lazy"], flags["use_offload"]
        self.mindspore_weight_decay, self.loss_scale = float(weight_decay), float(loss_scale)
        self.target, self.unique = target, unique
        self.names = dict(names) if isinstance(names, dict) else names
        self._cfg = kernels.Config(use_nesterov, use_amsgrad, False, fma_mode())
        self._fused_sparse = sparse.path is SparsePath.FUSED
        self._sparse_cfg = kernels.SparseConfig(use_nesterov, self.use_lazy, sparse.path.value == "composite",
                                                sparse.deduplicate)

    def build(self, var_list: list[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._moment1, self._moment2 = self.add_optimizer_variables(var_list, ["moment1", "moment2"])
        self._vhat = self.add_optimizer_variables(var_list, "vhat") if self.use_amsgrad else None
        self._beta1_power = self.add_variable((), initializer="ones", dtype="float32", name="beta1_power")
        self._beta2_power = self.add_variable((), initializer="ones", dtype="float32", name="beta2_power")
        # Decided here, on the Keras variables: update_step sees the tf.Variables, which have no path.
        self._decays = [self.decays(variable) for variable in var_list]
        self._paths = [variable_path(variable) for variable in var_list]

    def decays(self, variable: Any) -> bool:
        """Whether ``variable`` takes weight decay: MindSpore's default filter on its MindSpore name
        (``Optimizer._init_opt_attrs``: no ``beta``, no ``gamma``), and not excluded through Keras's
        ``exclude_from_weight_decay``."""
        name = self._name_of(variable)
        return "beta" not in name and "gamma" not in name and bool(self._use_weight_decay(variable))

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

    def _scalars(self, index: int, learning_rate: Any) -> kernels.Scalars:
        """This step's :class:`~msadam_tensorflow.kernels.Scalars` for ``variable`` (``lr_t`` from the
        advanced powers, the products rounded apart, as ``numpy_kernels`` computes it) for variable ``index``."""
        decay = self.mindspore_weight_decay * self.loss_scale
        weight_decay = tf.constant(np.float32(decay)) if decay > 0 and self._decays[index] else None
        grad_scale = None if self.loss_scale == 1.0 else tf.constant(np.float32(1.0 / self.loss_scale))
        beta1_power, beta2_power = self._powers()
        zero = self._zero()
        one = tf.constant(1.0, tf.float32)
        lr_t = tf.cast(learning_rate, tf.float32) * tf.sqrt(one - beta2_power) / (one - beta1_power)
        return kernels.Scalars(rounded(lr_t, zero), tf.constant(np.float32(self.beta1)),
                               tf.constant(np.float32(self.beta2)), tf.constant(np.float32(self.eps)),
                               weight_decay, grad_scale, zero,
                               kernels.new_lr64(tf.cast(learning_rate, tf.float32), beta1_power, beta2_power))

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index = self._get_variable_index(variable)
        m, v = self._moment1[index], self._moment2[index]
        vhat = self._vhat[index] if self._vhat is not None else None
        s = self._scalars(index, learning_rate)
        if isinstance(gradient, tf.IndexedSlices):
            self._sparse_update(gradient, index, variable, m, v, s)
            return
        vhat_variable = None if vhat is None else _tf_variable(vhat)
        if steps.apply_dense(_tf_variable(variable), _tf_variable(m), _tf_variable(v), vhat_variable,
                             tf.cast(gradient, variable.dtype), s, self._cfg):
            return  # the compiled one-pass kernel (eagerly or in a plain graph; never inside XLA)
        new = _compiled_step(self._cfg)(
            tf.convert_to_tensor(variable), tf.convert_to_tensor(m), tf.convert_to_tensor(v),
            None if vhat is None else tf.convert_to_tensor(vhat), tf.cast(gradient, variable.dtype), s)
        self.assign(variable, new[0])
        self.assign(m, new[1])
        self.assign(v, new[2])
        if vhat is not None:
            self.assign(vhat, new[3])

    def _sparse_update(self, gradient: tf.IndexedSlices, index: int, variable: Any, m: Any, v: Any,
                       s: kernels.Scalars) -> None:
        """MindSpore's sparse strategy on the rows of ``gradient`` (repeated indices as MindSpore treats them)."""
        if self.use_amsgrad or self.use_offload:
            # adam.py's _adam_opt registers no RowTensor kernel for these (msadam.gradients.check_gradients).
            raise TypeError(f"For 'Adam', variable '{self._paths[index]}' got a tf.IndexedSlices gradient, but "
                            f"{'AMSGrad' if self.use_amsgrad else 'use_offload'} has no sparse kernel.")
        kernels.sparse_step(_tf_variable(variable), _tf_variable(m), _tf_variable(v), gradient.indices,
                            gradient.values, s, self._sparse_cfg)
    def apply(self, grads: Any, trainable_variables: Any = None) -> None:
        grads = list(grads)
        if not grads:
            return
        self._check_dtypes(grads, trainable_variables)
        beta1_power, beta2_power = self._powers() if self.built else (None, None)
        super().apply(grads, trainable_variables)
        if beta1_power is None:  # built by this call: the powers read before it would be missing
            beta1_power, beta2_power = tf.ones(()) * np.float32(self.beta1), tf.ones(()) * np.float32(self.beta2)
        self._beta1_power.assign(beta1_power)
        self._beta2_power.assign(beta2_power)

    def _check_dtypes(self, grads: list[Any], trainable_variables: Any) -> None:
        """MindSpore's dtype refusals (bfloat16; float16 with AMSGrad, offload or sparse gradients; float64
        on the ``P.Adam``, offload and fused sparse paths; non-float dtypes): a ``TypeError`` before any
        variable is updated (``msadam.kernel_dtypes``)."""
        variables = list(self._trainable_variables if trainable_variables is None else trainable_variables)
        for gradient, variable in zip(grads, variables, strict=False):
            dtype = tf.as_dtype(variable.dtype)
            if gradient is None or dtype == tf.float32:
                continue
            check_parameter(str(getattr(variable, "path", variable.name)), dtype.as_numpy_dtype,
                            use_amsgrad=self.use_amsgrad, use_offload=self.use_offload,
                            sparse=isinstance(gradient, tf.IndexedSlices), fused=self._fused_sparse)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update({"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "use_locking": self.use_locking,
                       "use_nesterov": self.use_nesterov, "weight_decay": self.mindspore_weight_decay,
                       "loss_scale": self.loss_scale, "use_amsgrad": self.use_amsgrad, "use_lazy": self.use_lazy,
                       "use_offload": self.use_offload, "target": self.target, "unique": self.unique})
        if isinstance(self.names, dict):
            config["names"] = self.names  # a function of the variable cannot be serialized
        return config
