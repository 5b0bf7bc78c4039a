"""MindSpore 2.10's checkpoint files, read and written without MindSpore.

* :mod:`~msadam_compat.checkpoint.schema` — the ``checkpoint.proto`` messages, in a private
  protobuf descriptor pool;
* :mod:`~msadam_compat.checkpoint.dtypes` — MindSpore's dtype names (``"Float32"``, ``"BF16"``, ...);
* :mod:`~msadam_compat.checkpoint.ckpt_format` — the ``.ckpt`` layout: messages, slices, CRC trailer;
* :mod:`~msadam_compat.checkpoint.safetensors_format` — the safetensors layout and its metadata;
* :mod:`~msadam_compat.checkpoint.values` — what ``save_checkpoint`` accepts, as arrays;
* :mod:`~msadam_compat.checkpoint.net_loading` — ``load_param_into_net``'s matching and checks;
* :mod:`~msadam_compat.checkpoint.atomic` — write-beside-then-rename.

The public functions are ``ms.save_checkpoint``, ``ms.load_checkpoint`` and
``ms.load_param_into_net`` (:mod:`msadam_compat.train.serialization`).
"""
