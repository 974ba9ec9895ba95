"""Port face-api.js FaceExpressionNet (npm @vladmandic/face-api 1.7.15, model/face_expression_model.*)
from its tfjs weights (manifest JSON + uint8-quantised .bin) to (a) a dict of float32 numpy arrays
(.npz) and (b) an ONNX graph runnable by cv2.dnn / onnxruntime.  No TensorFlow needed.

    npm pack @vladmandic/face-api@1.7.15 && tar xzf vladmandic-face-api-1.7.15.tgz
    python scripts/port_faceapi_expression.py package/model/face_expression_model-weights_manifest.json \
        weights/face_expression_weights.npz weights/face_expression.onnx

`forward_numpy` is an independent NHWC reference of the network (as tfjs runs it), used by the tests
to check the ONNX graph.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_graph import finish_model  # noqa: E402

LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")  # FaceExpressions.ts
MEAN_RGB = (122.782, 117.001, 104.298)  # FaceFeatureExtractor.ts
SIZE = 112


def load_tfjs_weights(manifest: str | Path, groups: list[dict] | None = None) -> dict[str, np.ndarray]:
    """tfjs weights manifest -> {name: array}. `manifest` is the manifest file, or (with `groups`)
    any file in the folder of the .bin shards that `groups` (a model.json's weightsManifest) names.
    Quantisation: uint8/uint16 w = q * scale + min; float16 widened to float32."""
    manifest = Path(manifest)
    out = {}
    for group in groups if groups is not None else json.loads(manifest.read_text()):
        buf = b"".join((manifest.parent / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                qdt = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}[q["dtype"]]
                raw = np.frombuffer(buf, qdt, n, off)
                off += raw.nbytes
                arr = raw.astype(np.float32) if q["dtype"] == "float16" else \
                    (raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"]))
            else:
                dt = {"float32": np.float32, "int32": np.int32}[w["dtype"]]
                arr = np.frombuffer(buf, dt, n, off).copy()
                off += arr.nbytes
            out[w["name"]] = arr.reshape(w["shape"])
        assert off == len(buf), (off, len(buf))
    return out


# ---------------------------------------------------------------- numpy reference (NHWC, like tfjs)
def _same_pads(size, k, s):
    o = -(-size // s)
    t = max((o - 1) * s + k - size, 0)
    return t // 2, t - t // 2


def _pad(x, k, s):
    (a, b), (c, d) = _same_pads(x.shape[1], k, s), _same_pads(x.shape[2], k, s)
    return np.pad(x, ((0, 0), (a, b), (c, d), (0, 0)))


def _patches(x, k, s):
    xp = _pad(x, k, s)
    n, h, w, c = x.shape
    oh, ow = -(-h // s), -(-w // s)
    cols = np.stack([xp[:, i:i + s * oh:s, j:j + s * ow:s, :] for i in range(k) for j in range(k)], 3)
    return cols  # (n, oh, ow, k*k, c)


def _conv(x, f, b, s):  # f: (3,3,cin,cout)
    cols = _patches(x, 3, s)
    return np.einsum("nhwkc,kcd->nhwd", cols, f.reshape(9, f.shape[2], f.shape[3])) + b


def _sep(x, dw, pw, b, s):  # dw: (3,3,c,1), pw: (1,1,c,cout)
    cols = _patches(x, 3, s)
    y = np.einsum("nhwkc,kc->nhwc", cols, dw.reshape(9, dw.shape[2]))
    return y @ pw[0, 0] + b


def forward_numpy(W: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """x: (n, 112, 112, 3) float32 RGB 0..255 -> (n, 7) softmax in LABELS order."""
    relu = lambda t: np.maximum(t, 0)
    x = (x - np.array(MEAN_RGB, np.float32)) / 255.0
    for d in range(4):
        p = f"dense{d}/"
        if d == 0:
            o1 = relu(_conv(x, W[p + "conv0/filters"], W[p + "conv0/bias"], 2))
        else:
            o1 = relu(_sep(x, W[p + "conv0/depthwise_filter"], W[p + "conv0/pointwise_filter"], W[p + "conv0/bias"], 2))
        sep = lambda t, i: _sep(t, W[f"{p}conv{i}/depthwise_filter"], W[f"{p}conv{i}/pointwise_filter"], W[f"{p}conv{i}/bias"], 1)
        o2 = sep(o1, 1)
        o3 = sep(relu(o1 + o2), 2)
        o4 = sep(relu(o1 + o2 + o3), 3)
        x = relu(o1 + o2 + o3 + o4)
    feat = x.mean(axis=(1, 2))  # avgPool 7x7 on a 7x7 map
    z = feat @ W["fc/weights"] + W["fc/bias"]
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


# ---------------------------------------------------------------- ONNX (NCHW), input already normalised
def build_onnx(W: dict[str, np.ndarray]):
    from onnx import helper, numpy_helper

    nodes, inits = [], []
    shape = {"input": (3, SIZE, SIZE)}

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, np.float32), name))
        return name

    def conv(x, w, b, stride, group, out):
        c, h, wd = shape[x]
        k = w.shape[2]
        (pt, pb), (pl, pr) = _same_pads(h, k, stride), _same_pads(wd, k, stride)
        ins = [x, init(out + "_W", w)] + ([init(out + "_B", b)] if b is not None else [])
        nodes.append(helper.make_node("Conv", ins, [out], kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[pt, pl, pb, pr], group=group))
        shape[out] = (w.shape[0], (h + pt + pb - k) // stride + 1, (wd + pl + pr - k) // stride + 1)
        return out

    def sep(x, p, stride, out):
        dw, pw, b = W[p + "/depthwise_filter"], W[p + "/pointwise_filter"], W[p + "/bias"]
        c = dw.shape[2]
        d = conv(x, dw[:, :, :, 0].transpose(2, 0, 1)[:, None], None, stride, c, out + "_dw")
        return conv(d, pw[0, 0].T[:, :, None, None], b, 1, 1, out)

    def op(kind, ins, out):
        nodes.append(helper.make_node(kind, ins, [out]))
        shape[out] = shape[ins[0]]
        return out

    x = "input"
    for d in range(4):
        p = f"dense{d}/conv"
        if d == 0:
            o1 = conv(x, W[p + "0/filters"].transpose(3, 2, 0, 1), W[p + "0/bias"], 2, 1, f"d{d}_c0")
        else:
            o1 = sep(x, p + "0", 2, f"d{d}_c0")
        o1 = op("Relu", [o1], f"d{d}_o1")
        o2 = sep(o1, p + "1", 1, f"d{d}_c1")
        s12 = op("Add", [o1, o2], f"d{d}_s12")
        o3 = sep(op("Relu", [s12], f"d{d}_r12"), p + "2", 1, f"d{d}_c2")
        s123 = op("Add", [s12, o3], f"d{d}_s123")
        o4 = sep(op("Relu", [s123], f"d{d}_r123"), p + "3", 1, f"d{d}_c3")
        x = op("Relu", [op("Add", [s123, o4], f"d{d}_s1234")], f"d{d}_out")
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["feat"], axis=1))
    nodes.append(helper.make_node("Gemm", ["feat", init("fc_W", W["fc/weights"]), init("fc_B", W["fc/bias"])], ["logits"]))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    return finish_model(nodes, "face_api_expression", [("input", ["n", 3, SIZE, SIZE])],
                        [("probs", ["n", 7])], inits)


if __name__ == "__main__":
    import onnx
    manifest, npz, onx = sys.argv[1:4]
    W = load_tfjs_weights(manifest)
    np.savez_compressed(npz, **W)
    onnx.save(build_onnx(W), onx)
    print("params", sum(v.size for v in W.values()), "->", npz, onx)
