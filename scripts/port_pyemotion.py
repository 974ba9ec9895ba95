"""Port PyEmotion's FER2013 emotion network (PyPI `PyEmotion` 1.0.0, MIT, Karthick Nagarajan;
`PyEmotion/model/main_model.pkl` + `PyEmotion/networks.py` NetworkV2(in_c=1, nl=32, out_f=7)) to an
ONNX graph runnable by cv2.dnn. Mien uses it only as a held-out judge (`classify.judge()`), never in
the gate or for tuning.

The .pkl is a torch checkpoint ({'network': state_dict, 'optimizer', 'epochs', 'accuracy'}), so
reading it needs torch; Mien itself does not. It was run once, in a throwaway venv outside the repo:

    python3 -m venv /tmp/pyemo-venv && /tmp/pyemo-venv/bin/pip install torch==2.13.0 numpy onnx \\
        opencv-python-headless
    pip download --no-deps PyEmotion==1.0.0 && unzip PyEmotion-1.0.0-py3-none-any.whl -d x
    # real face crops to check the port on, made by Mien (its venv): 68 London people x 2 photos
    PYTHONPATH=. python scripts/port_pyemotion.py --crops /tmp/pyemo_crops.npy
    /tmp/pyemo-venv/bin/python scripts/port_pyemotion.py x/PyEmotion/model/main_model.pkl \\
        weights/emotion_pyemotion.onnx /tmp/pyemo_crops.npy

which printed: max |onnx(cv2.dnn) - torch| = 4.6e-06 and max |numpy - torch| = 4.4e-06 on the
sigmoid outputs (0..1) of the 136 real crops, argmax equal on 136/136. main_model.pkl's sha256:
d2789940007ee6175130fefd3ed9a523a1afa4475fbdafbf64f2948db6c29537.

The network: 4 x [ReflectionPad2d(1), Conv2d 3x3 (stride 1, 2, 2, 2), BatchNorm2d, ReLU] on a
48x48 gray face (1 -> 32 -> 64 -> 128 -> 256 channels, 48 -> 48 -> 24 -> 12 -> 6), flatten (NCHW
order), Linear 9216 -> 256, ReLU, Linear 256 -> 7, Sigmoid. BatchNorm (eval mode, eps 1e-5) is
folded into the convolution before it. Input: (x / 255 - 0.5) / 0.5, as PyEmotion's
ToTensor + Normalize(0.5, 0.5). Output: the 7 sigmoid scores in FER2013 order (LABELS).

`forward_numpy` is an independent NCHW reference of the same network (reflection pad, im2col
convolution), used by the tests on the weights read back from the ONNX initialisers.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_graph import finish_model  # noqa: E402

# PyEmotion main.py: {0: 'Angry', 1: 'Disgust', 2: 'Fear', 3: 'Happy', 4: 'Sad', 5: 'Surprise', 6: 'Neutral'}
LABELS = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")  # Mien's names
SIZE = 48
STRIDES = (1, 2, 2, 2)
BN_EPS = 1e-5  # torch.nn.BatchNorm2d default


def load_state_dict(pkl: str | Path) -> dict[str, np.ndarray]:
    """The checkpoint's 'network' state dict as float32 numpy arrays (needs torch)."""
    import torch
    ckpt = torch.load(str(pkl), map_location="cpu", weights_only=False)  # also holds optimizer state
    return {k: v.detach().cpu().numpy() for k, v in ckpt["network"].items() if v.dtype.is_floating_point}


def fold(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """State dict -> {conv{i}_W, conv{i}_B, fc{1,2}_W, fc{1,2}_B}, BatchNorm folded into each conv."""
    W = {}
    for i in range(1, 5):
        c, bn = f"conv_{i}.1.", f"conv_{i}.2."
        scale = sd[bn + "weight"].astype(np.float64) / np.sqrt(sd[bn + "running_var"].astype(np.float64) + BN_EPS)
        W[f"conv{i}_W"] = (sd[c + "weight"] * scale[:, None, None, None]).astype(np.float32)
        W[f"conv{i}_B"] = ((sd[c + "bias"] - sd[bn + "running_mean"]) * scale + sd[bn + "bias"]).astype(np.float32)
    for j, key in ((1, "linear.0."), (2, "linear.2.")):
        W[f"fc{j}_W"] = sd[key + "weight"].astype(np.float32)  # (out, in), as torch stores it
        W[f"fc{j}_B"] = sd[key + "bias"].astype(np.float32)
    return W


# ---------------------------------------------------------------- numpy reference (NCHW)
def _conv_reflect(x: np.ndarray, w: np.ndarray, b: np.ndarray, s: int) -> np.ndarray:
    """ReflectionPad2d(1) then a 3x3 convolution with stride s. x: (n, c, h, w); w: (o, c, 3, 3)."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    n, c, h, wd = xp.shape
    oh, ow = (h - 3) // s + 1, (wd - 3) // s + 1
    cols = np.stack([xp[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]
                     for i in range(3) for j in range(3)], 2)  # (n, c, 9, oh, ow)
    y = np.einsum("nckhw,ock->nohw", cols, w.reshape(w.shape[0], c, 9), optimize=True)
    return y + b[None, :, None, None]


def forward_numpy(W: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """x: (n, 48, 48) float32, already (x/255 - 0.5)/0.5 -> (n, 7) sigmoid scores in LABELS order."""
    h = x[:, None].astype(np.float64)
    for i, s in enumerate(STRIDES, 1):
        h = np.maximum(_conv_reflect(h, W[f"conv{i}_W"], W[f"conv{i}_B"], s), 0)
    h = h.reshape(len(h), -1)
    h = np.maximum(h @ W["fc1_W"].T + W["fc1_B"], 0)
    z = h @ W["fc2_W"].T + W["fc2_B"]
    return (1 / (1 + np.exp(-z))).astype(np.float32)


# ---------------------------------------------------------------- ONNX (NCHW), input already normalised
def build_onnx(W: dict[str, np.ndarray]):
    from onnx import helper, numpy_helper

    nodes, inits = [], []

    def init(name, arr, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype), name))
        return name

    pads = init("reflect_pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64)  # N, C, H, W begins then ends
    x = "input"
    for i, s in enumerate(STRIDES, 1):
        nodes.append(helper.make_node("Pad", [x, pads], [f"pad{i}"], mode="reflect"))
        nodes.append(helper.make_node("Conv", [f"pad{i}", init(f"conv{i}_W", W[f"conv{i}_W"]),
                                               init(f"conv{i}_B", W[f"conv{i}_B"])], [f"conv{i}"],
                                      kernel_shape=[3, 3], strides=[s, s], pads=[0, 0, 0, 0]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        x = f"relu{i}"
    nodes.append(helper.make_node("Flatten", [x], ["feat"], axis=1))
    nodes.append(helper.make_node("Gemm", ["feat", init("fc1_W", W["fc1_W"]), init("fc1_B", W["fc1_B"])],
                                  ["fc1"], transB=1))
    nodes.append(helper.make_node("Relu", ["fc1"], ["fc1_relu"]))
    nodes.append(helper.make_node("Gemm", ["fc1_relu", init("fc2_W", W["fc2_W"]), init("fc2_B", W["fc2_B"])],
                                  ["logits"], transB=1))
    nodes.append(helper.make_node("Sigmoid", ["logits"], ["scores"]))
    return finish_model(nodes, "pyemotion_networkv2", [("input", ["n", 1, SIZE, SIZE])],
                        [("scores", ["n", 7])], inits)


def weights_from_onnx(path: str | Path) -> dict[str, np.ndarray]:
    """The folded weights back from the .onnx initialisers (for `forward_numpy`)."""
    import onnx
    from onnx import numpy_helper
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer
            if t.name != "reflect_pads"}


# ---------------------------------------------------------------- checks (run in the torch venv)
def torch_network(sd_path: str | Path):
    """PyEmotion's own NetworkV2 (networks.py, MIT), rebuilt verbatim, with the checkpoint loaded."""
    import torch
    import torch.nn as nn

    def block(cin, cout, s):
        return nn.Sequential(nn.ReflectionPad2d(padding=1), nn.Conv2d(cin, cout, (3, 3), stride=s, padding=0),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class NetworkV2(nn.Module):
        def __init__(self, nl=32):
            super().__init__()
            self.conv_1, self.conv_2 = block(1, nl, 1), block(nl, 2 * nl, 2)
            self.conv_3, self.conv_4 = block(2 * nl, 4 * nl, 2), block(4 * nl, 8 * nl, 2)
            self.linear = nn.Sequential(nn.Linear(256 * 6 * 6, 256), nn.ReLU(inplace=True),
                                        nn.Linear(256, 7), nn.Sigmoid())

        def forward(self, x):
            x = self.conv_4(self.conv_3(self.conv_2(self.conv_1(x))))
            return self.linear(x.reshape((x.shape[0], -1)))

    net = NetworkV2()
    net.load_state_dict(torch.load(str(sd_path), map_location="cpu", weights_only=False)["network"])
    return net.eval()


def check(pkl: str | Path, onnx_path: str | Path, crops: np.ndarray) -> None:
    """Print max |difference| of the ONNX graph (cv2.dnn, as Mien runs it) and of `forward_numpy`
    against PyEmotion's torch network on `crops` ((n, 48, 48) float32, normalised)."""
    import torch
    with torch.no_grad():
        ref = torch_network(pkl)(torch.from_numpy(crops[:, None].astype(np.float32))).numpy()
    num = forward_numpy(weights_from_onnx(onnx_path), crops)
    print(f"crops {len(crops)}: max |numpy - torch| = {np.abs(num - ref).max():.2g}")
    try:
        import cv2
    except ImportError:
        print("cv2 not installed here: ONNX graph not run")
        return
    net = cv2.dnn.readNetFromONNX(str(onnx_path))
    net.setInput(np.ascontiguousarray(crops[:, None], np.float32))
    out = net.forward().reshape(len(crops), -1)
    print(f"max |onnx(cv2.dnn) - torch| = {np.abs(out - ref).max():.2g}; "
          f"argmax equal on {(out.argmax(1) == ref.argmax(1)).sum()}/{len(crops)}")


def save_london_crops(out: str | Path) -> None:
    """(Mien's venv) Judge crops of every London photo, normalised, to check the port against torch."""
    from pipeline.classify import PyEmotionJudge
    from pipeline.datasets import london_ids, london_photo
    from pipeline.editor import detect
    crops = []
    for pid in london_ids():
        for kind in ("neutral", "happy"):
            rgb, faces = detect(london_photo(pid, kind))
            crops.append(PyEmotionJudge.crops(rgb, faces[:1]))
    x = PyEmotionJudge.normalise(np.concatenate(crops))
    np.save(out, x)
    print(x.shape, "->", out)


if __name__ == "__main__":
    if sys.argv[1] == "--crops":
        save_london_crops(sys.argv[2])
        sys.exit()
    import onnx
    pkl, onx = sys.argv[1:3]
    W = fold(load_state_dict(pkl))
    onnx.save(build_onnx(W), onx)
    print("params", sum(v.size for v in W.values()), "->", onx)
    if len(sys.argv) > 3:
        check(pkl, onx, np.load(sys.argv[3]))
