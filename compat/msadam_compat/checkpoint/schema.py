"""MindSpore's checkpoint protobuf schema, declared in Python and kept in a private descriptor pool.

MindSpore 2.10 ships ``mindspore/train/checkpoint_pb2.py`` (generated from ``checkpoint.proto``)::

    syntax = "proto2";
    message Checkpoint {
      message Value {
        required string tag = 1;
        oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; }
      }
      repeated Value value = 1;
    }
    message TensorProto {
      repeated int64 dims = 1;
      required string tensor_type = 2;
      required bytes tensor_content = 3;
    }
    message MapTensorProto { repeated TensorProto tensor = 1; }

It registers that file in protobuf's *default* pool. The same declaration is built here as a
``FileDescriptorProto`` and added to a pool of our own, so the two coexist in one process (a second
``checkpoint.proto`` in the default pool would be a conflict). The message classes come from
``message_factory.GetMessageClass``; the bytes on the wire are protobuf's, so a file written with
either set of classes parses with the other.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["Checkpoint", "MapTensorProto", "TensorProto", "file_descriptor_proto", "pool"]

_FIELD = descriptor_pb2.FieldDescriptorProto
_PROTO_FILE = "checkpoint.proto"


def _field(message: descriptor_pb2.DescriptorProto, name: str, number: int, label: int, kind: int,
           type_name: str | None = None, oneof_index: int | None = None) -> None:
    field = message.field.add(name=name, number=number, label=label, type=kind)
    if type_name is not None:
        field.type_name = type_name
    if oneof_index is not None:
        field.oneof_index = oneof_index


def file_descriptor_proto() -> descriptor_pb2.FileDescriptorProto:
    """``checkpoint.proto`` of MindSpore 2.10, field for field (no package, proto2)."""
    # No explicit ``syntax``: an unset syntax is proto2, and leaves the descriptor byte-identical to
    # MindSpore's (``checkpoint_pb2.DESCRIPTOR.serialized_pb``), which tests compare.
    proto = descriptor_pb2.FileDescriptorProto(name=_PROTO_FILE)

    checkpoint = proto.message_type.add(name="Checkpoint")
    value = checkpoint.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    _field(value, "tag", 1, _FIELD.LABEL_REQUIRED, _FIELD.TYPE_STRING)
    _field(value, "tensor", 2, _FIELD.LABEL_OPTIONAL, _FIELD.TYPE_MESSAGE, ".TensorProto", oneof_index=0)
    _field(value, "maptensor", 3, _FIELD.LABEL_OPTIONAL, _FIELD.TYPE_MESSAGE, ".MapTensorProto", oneof_index=0)
    _field(checkpoint, "value", 1, _FIELD.LABEL_REPEATED, _FIELD.TYPE_MESSAGE, ".Checkpoint.Value")

    tensor = proto.message_type.add(name="TensorProto")
    _field(tensor, "dims", 1, _FIELD.LABEL_REPEATED, _FIELD.TYPE_INT64)
    _field(tensor, "tensor_type", 2, _FIELD.LABEL_REQUIRED, _FIELD.TYPE_STRING)
    _field(tensor, "tensor_content", 3, _FIELD.LABEL_REQUIRED, _FIELD.TYPE_BYTES)

    map_tensor = proto.message_type.add(name="MapTensorProto")
    _field(map_tensor, "tensor", 1, _FIELD.LABEL_REPEATED, _FIELD.TYPE_MESSAGE, ".TensorProto")
    return proto


#: The private pool holding ``checkpoint.proto`` (never protobuf's default pool, where MindSpore puts its own).
pool = descriptor_pool.DescriptorPool()
pool.Add(file_descriptor_proto())

Checkpoint: Any = message_factory.GetMessageClass(pool.FindMessageTypeByName("Checkpoint"))
TensorProto: Any = message_factory.GetMessageClass(pool.FindMessageTypeByName("TensorProto"))
MapTensorProto: Any = message_factory.GetMessageClass(pool.FindMessageTypeByName("MapTensorProto"))
