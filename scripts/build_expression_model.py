"""Build weights/expression_model.npz from the London photos (../shared/data/faces/london).

    python scripts/build_expression_model.py                 # everything (reads ../shared)
    python scripts/build_expression_model.py --triangulate   # only (re)add the triangulations

- mean: the canonical neutral face: all 68 neutral meshes aligned (Umeyama, expression-stable
  points), averaged, turned to face the camera and made left/right symmetric.
- mirror: each mesh point's left/right twin (nearest point of the mirrored mean).
- smile: the mean neutral->smile landmark shift of the same 68 people in that frame (symmetrised):
  the measured AU6+AU12 field.
- range_names/range_values: 5th/50th/95th percentiles of each `expression.measures` over the real
  neutral faces: how much faces vary at rest, so relaxing ignores what is just the person's face.
Prints what it measured.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from anywhere

import numpy as np

from pipeline.engines.geometric import expression as ex
from pipeline.mesh import EYE_L, EYE_R, STABLE
from pipeline.datasets import london_ids, london_photo
from pipeline.detection import detect_faces
from pipeline.imageio import load_image


def normalise(p):
    """Centre between the eyes, IOD = 1."""
    el, er = p[EYE_L].mean(0), p[EYE_R].mean(0)
    return (p - (el + er) / 2) / np.linalg.norm(er[:2] - el[:2])


def frontal(p):
    """Rotate so the eye line is x, forehead->chin is y (both in the image plane after rotation)."""
    x = p[EYE_R].mean(0) - p[EYE_L].mean(0)
    x /= np.linalg.norm(x)
    y = p[152] - p[10]
    y -= x * (y @ x)
    y /= np.linalg.norm(y)
    return p @ np.stack([x, y, np.cross(x, y)], 1)


def triangulate(path=ex.MODEL_PATH):
    """Add the fixed triangulations (mesh; mesh + warp anchor ring) to the model file, so the
    runtime needs no scipy."""
    from scipy.spatial import Delaunay

    from pipeline.engines.geometric.warp import ring_around

    z = dict(np.load(path))
    mean = z["mean"].astype(np.float64)
    z["tri_mesh"] = Delaunay(mean[:, :2]).simplices.astype(np.int32)
    z["tri_ring"] = Delaunay(np.concatenate([mean[:, :2], ring_around(mean)])).simplices.astype(np.int32)
    np.savez(path, **z)
    ex.model.cache_clear()
    print(f"triangles: {len(z['tri_mesh'])} (mesh), {len(z['tri_ring'])} (mesh + ring)")


def main():
    ids = london_ids()
    lm = {k: [] for k in ("neutral", "happy")}
    for fid in ids:
        for k in lm:
            faces = detect_faces(load_image(london_photo(fid, k)).rgb)
            lm[k].append(faces[0].landmarks.astype(np.float64))
    n, h = np.array(lm["neutral"]), np.array(lm["happy"])
    mean = normalise(frontal(normalise(n[0])))
    for _ in range(5):
        al = [(s * (r @ p.T)).T + t for p in n for s, r, t in [ex.umeyama(p[STABLE], mean[STABLE])]]
        mean = normalise(frontal(normalise(np.mean(al, 0))))
    flipped = mean * [-1, 1, 1]
    mirror = np.argmin(((mean[:, None] - flipped[None]) ** 2).sum(-1), 1)
    mean = normalise((mean + flipped[mirror]) / 2)

    def align(p):
        s, r, t = ex.umeyama(p[STABLE], mean[STABLE])
        return (s * (r @ p.T)).T + t

    an, ah = np.array([align(p) for p in n]), np.array([align(p) for p in h])
    smile = (ah - an).mean(0)
    smile = (smile + smile[mirror] * [-1, 1, 1]) / 2
    meas = [ex.measures_canonical(c) for c in an]
    names = list(meas[0])
    rng = np.array([np.percentile([m[k] for m in meas], [5, 50, 95]) for k in names])
    np.savez(ex.MODEL_PATH, mean=mean.astype(np.float32), mirror=mirror, smile=smile.astype(np.float32),
             range_names=np.array(names), range_values=rng)
    triangulate()
    print(f"{len(ids)} people; mirror pairs consistent: {(mirror[mirror] == np.arange(len(mirror))).mean():.2%}")
    print(f"smile at the mouth corners (IOD): {smile[61].round(3)} / {smile[291].round(3)}; cheeks {smile[50].round(3)}")
    est_n = [ex.estimate(c) for c in an]
    est_h = [ex.estimate(c) for c in ah]
    for au in ex.READ_FROM:
        en = np.array([e.get(au, 0) for e in est_n])
        eh = np.array([e.get(au, 0) for e in est_h])
        print(f"{au}: read on neutral photos {(en > 0).mean():.0%} (mean {en.mean():.3f}); on smiles {(eh > 0).mean():.0%} (mean {eh.mean():.3f})")


if __name__ == "__main__":
    if sys.argv[1:] == ["--triangulate"]:  # add the triangulations to an existing model file
        triangulate()
    else:
        main()
