"""The last step every porting script shares: nodes + initialisers -> a checked ONNX model that
OpenCV's dnn (and older onnxruntime) can load: opset 13, IR version 8, float32 inputs/outputs."""
from __future__ import annotations


def finish_model(nodes, name: str, inputs, outputs, inits, producer: str = "mien-port"):
    """inputs/outputs: [(tensor name, shape)], shapes with a symbolic batch dimension."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name=producer)
    model.ir_version = 8  # loadable by OpenCV dnn and older onnxruntime
    onnx.checker.check_model(model)
    return model
