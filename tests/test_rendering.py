"""Believable rendering on real photos (issue 11): each test is one of the bugs seen on the London
photos, with the issue's photo and settings, checked on the output pixels.

- nothing changes outside the face (dark ovals on the ear, teeth texture on the cheek, marks in
  the hair beside the jaw);
- mouth painting stays strictly inside the target's inner lips;
- a new opening shows a real interior (the mouth bank), not painted "piano keys";
- real teeth are never stretched (a smile -> surprised), and a smile -> neutral shows none;
- a closed eye (AU43 = 1) shows no eye white;
- a closed-mouth smile (happy with AU25 taken away) opens nothing.
"""
from functools import cache

import cv2
import numpy as np
import pytest

from pipeline.datasets import TEST_DATA, london_split, read_tem
from pipeline.editor import detect, edit
from pipeline.engines.geometric import eyes, lipbank, mouth, mouthbank, warp
from pipeline.engines.geometric.expression import LOWER_RINGS, UPPER_RINGS, lip_gap, measures, plan, pose_of
from pipeline.mesh import (
    EYE_L,
    EYE_R,
    FACE_OVAL,
    LID_LO_L,
    LID_LO_R,
    LID_UP_L,
    LID_UP_R,
    LIP_CORNERS,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    LIPS_LOWER_RINGS,
    LIPS_OUTER,
    LIPS_UPPER_RINGS,
)

from .conftest import SHARED_FACES, london, needs_shared


@cache
def _photo(face_id: str, kind: str):
    """(rgb, face) of a London photo: the tests' copy when there is one, else the shared set."""
    p = london(face_id, kind)
    if not p.exists():
        p = SHARED_FACES / "london" / p.name
    rgb, faces = detect(p)
    return rgb, faces[0]


def _edit(face_id, kind, emotion, aus=None, intensity=1.0):
    rgb, face = _photo(face_id, kind)
    r = edit(rgb, emotion, intensity, aus=aus, detections=[face], gate=False)
    return rgb, face.landmarks, r.faces[0].landmarks_after, r.image


def _iod(lm):
    return float(np.hypot(*(lm[263, :2] - lm[33, :2])))


def _poly_mask(shape, pts):
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts[:, :2]).astype(np.int32)], 1)
    return m > 0


def _mouth_coords(shape, lm):
    """Every pixel's place in the mouth frame of `lm` (`mouthbank.frame`): the frame, s (along the
    mouth, 0 at the left corner) and t (down from the corner line), in pixels."""
    f = mouthbank.frame(lm)
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]]
    st = f.to_st(np.stack([gx, gy], -1).astype(np.float64))
    return f, st[..., 0], st[..., 1]


SHARED_ONLY = {"002"}  # photos the issue names that are not in tests/data


def _case(face_id, *rest):
    marks = [needs_shared] if face_id in SHARED_ONLY else []
    return pytest.param(face_id, *rest, marks=marks, id=f"{face_id}-{rest[0]}-{rest[1]}-{rest[2]}")


@pytest.mark.parametrize("face_id,kind,emotion,aus", [
    _case("002", "happy", "sad", None),  # a dark oval on the ear, the ear's outline notched
    _case("002", "happy", "contempt", None),
    _case("001", "neutral", "happy", {"AU25": -1.5}),  # teeth texture on the cheek
    _case("001", "neutral", "neutral", {"AU12": 1.1, "AU6": 1.0}),  # marks in the hair beside the jaw
    _case("001", "neutral", "sad", None),
])
def test_nothing_changes_outside_the_face(face_id, kind, emotion, aus):
    """No pixel changes outside the hull of the face before and after, dilated by 0.15 IOD."""
    rgb, src, dst, out = _edit(face_id, kind, emotion, aus)
    hull = np.zeros(rgb.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(np.concatenate([src, dst])[:, :2]).astype(np.int32)), 1)
    k = 2 * int(0.15 * _iod(src)) + 1
    hull = cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    changed = (out != rgb).any(-1)
    assert changed.any()
    assert not (changed & (hull == 0)).any(), f"{int((changed & (hull == 0)).sum())} pixels changed outside the face"


@pytest.mark.parametrize("emotion", ["happy", "surprised", "fearful", "disgusted"])
def test_mouth_painting_stays_inside_the_inner_lips(emotion):
    """What the mouth stage paints over the warped face lies strictly inside the target's inner
    lips (001 neutral, whose mouth is closed: every target opens it)."""
    rgb, face = _photo("001", "neutral")
    src = face.landmarks
    p = plan(src, emotion, 1.0)
    region = warp.region_for(src, rgb.shape[:2])
    mapping, _ = warp.backward_map(src, p.target, region)
    warped = warp.remap(rgb, mapping)
    before = warped.copy()
    assert mouth.render_interior(rgb, src, p.target, warped, region, p.pose.s) is not None
    inner = _poly_mask(warped.shape[:2], p.target[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1]] - [region.x0, region.y0, 0])
    painted = (warped != before).any(-1)
    assert painted.sum() > 200
    assert not (painted & ~inner).any(), f"{int((painted & ~inner).sum())} pixels painted outside the inner lips"


def _ncc(a, b, m):
    a, b = a[m] - a[m].mean(), b[m] - b[m].mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-9))


def test_a_new_opening_shows_a_real_mouth():
    """001 neutral (no teeth) -> a smile: the opening, read back in the canonical mouth frame, is
    the mouth-bank exemplar picked for it (relit: compared by correlation), not synthetic teeth."""
    rgb, src, dst, out = _edit("001", "neutral", "happy")
    inner, valid = mouthbank.rectify(out, dst)
    b = mouthbank.bank()
    i = mouthbank.pick(b, mouthbank.frame(dst).aspect(), mouthbank.skin_colour(rgb, src))
    core = (valid >= 1) & (b.valid[i] >= 255)
    core[:, :8] = core[:, -8:] = False  # the fade at the corners
    core = cv2.erode(core.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert core.sum() > 100
    r = _ncc(inner.mean(-1), b.interiors[i].mean(-1).astype(np.float64), core)
    assert r > 0.8, f"opening vs exemplar {b.ids[i]}: correlation {r:.2f}"


def test_leaving_out_a_person_never_picks_their_teeth():
    """The evaluation's leave-one-person-out: inside `leaving_out(id)` no exemplar of that London
    person is picked, for every opening from closed to the tallest, and outside it the pick is back."""
    b = mouthbank.bank()
    skin = np.array([150.0, 110.0, 95.0])
    for aspect in np.linspace(0.0, float(b.aspect.max()) + 0.05, 12):
        i = mouthbank.pick(b, aspect, skin)
        with mouthbank.leaving_out(str(b.ids[i])):
            j = mouthbank.pick(b, aspect, skin)
            with mouthbank.leaving_out(str(b.ids[j])):
                k = mouthbank.pick(b, aspect, skin)
        assert b.ids[j] != b.ids[i] and b.ids[k] not in (b.ids[i], b.ids[j]), (aspect, b.ids[[i, j, k]])
        assert mouthbank.pick(b, aspect, skin) == i


def _same_lip_folds(lm, target) -> int:
    """Warp triangles within one lip (all three corners on the upper lip's rings, or all on the
    lower's) that the plan turns inside out: a fold the warp tears into fragments."""
    _, tris = warp._topology()
    up, lo = set(LIPS_UPPER_RINGS), set(LIPS_LOWER_RINGS)
    same = tris[[set(map(int, t)) <= up or set(map(int, t)) <= lo for t in tris]]

    def area(p):
        a, b, c = p[same[:, 0], :2], p[same[:, 1], :2], p[same[:, 2], :2]
        return (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]

    a0, a1 = area(lm), area(target)
    return int(((np.sign(a0) != np.sign(a1)) & (np.abs(a0) > 1.0)).sum())


def test_pressed_lips_do_not_fold():
    """On lips pressed together the landmarker crosses the lips' rings (070's closed smile: the
    lower inner edge 3.5 px above the upper). Points were labelled upper or lower lip by position,
    so lower-lip points stayed behind as the lip moved: 10 lower-lip triangles folded and the warp
    tore the lip line into dark fragments when the smile was taken away. Labelled by ring, none
    fold; nor on the test people for the targets that do not press the lips (anger and smiles
    still fold a few: left)."""
    lm = detect(london("070", "happy"))[1][0].landmarks
    assert _same_lip_folds(lm, plan(lm, "neutral", 1.0).target) == 0
    for person in ("001", "005", "021", "025", "064"):
        for kind in ("neutral", "happy"):
            lm = detect(london(person, kind))[1][0].landmarks
            for emotion in ("neutral", "sad", "fearful", "disgusted", "surprised"):
                assert _same_lip_folds(lm, plan(lm, emotion, 1.0).target) == 0, (person, kind, emotion)


def _teeth_by_half(rgb, src, dst, out) -> tuple[float, float]:
    """Teeth height (of the mouth's width, `mouthbank.teeth_height`) in the upper and the lower half
    of an opening, read back in the canonical mouth frame."""
    inner, valid = mouthbank.rectify(out, dst)
    skin = mouthbank.skin_colour(rgb, src)
    rows = np.nonzero(valid.max(1) > 0.5)[0]
    upper = np.arange(len(valid))[:, None] <= (rows.min() + rows.max()) // 2
    return (mouthbank.teeth_height(inner, valid * upper, skin),
            mouthbank.teeth_height(inner[::-1], (valid * ~upper)[::-1], skin))


@pytest.mark.parametrize("person", ["001", "005", "021"])
def test_fear_shows_lower_teeth_not_a_grin(person):
    """Neutral -> fearful opens the mouth with the upper teeth under the stretched upper lip and
    the lower teeth bared (a band of upper teeth read as a grin: issue 12); a smile from the same
    photo shows its upper teeth. Measured on these photos: fear upper 0.000, lower 0.021-0.065;
    smile upper 0.042-0.052 of the mouth's width."""
    fear_up, fear_lo = _teeth_by_half(*_edit(person, "neutral", "fearful"))
    smile_up, _ = _teeth_by_half(*_edit(person, "neutral", "happy"))
    assert smile_up > 0.03 and fear_up < 0.01, (smile_up, fear_up)
    assert fear_lo > 0.015


def test_mouth_bank_is_real_and_small():
    """The bank holds real London interiors: 064's smile (in tests/data) rectifies to its stored
    exemplar; the file is small; the measured teeth bound is a real smile's."""
    b = mouthbank.bank()
    assert mouthbank.BANK_PATH.stat().st_size < 400_000
    assert 10 <= len(b.ids) <= 30 and b.interiors.shape[1:] == (mouthbank.H, mouthbank.W, 3)
    assert 0.15 < b.teeth_h_max < 0.35
    rgb, face = _photo("064", "happy")
    inner, _ = mouthbank.rectify(rgb, face.landmarks)
    k = list(b.ids).index("064")
    assert np.abs(inner.astype(int) - b.interiors[k]).mean() < 2.0


@needs_shared
@pytest.mark.parametrize("intensity", [1.0, 1.5])
def test_real_teeth_are_never_stretched(intensity):
    """002 happy (a smile with teeth) -> surprised: the teeth showing in the new opening are no
    taller (as a fraction of the mouth's width) than the tallest in any real London smile."""
    rgb, src, dst, out = _edit("002", "happy", "surprised", intensity=intensity)
    assert mouth.teeth_showing(rgb, src)
    inner, valid = mouthbank.rectify(out, dst)
    h = mouthbank.teeth_height(inner, valid, mouthbank.skin_colour(rgb, src))
    assert 0.02 < h <= mouthbank.bank().teeth_h_max, f"teeth {h:.3f} of the mouth's width"


def _teeth_profile(img, lm, down, half):
    """Grey levels along the mouth frame's s axis, `down` pixels below the upper inner lip, over
    +-`half` pixels about the mouth's middle (half-pixel steps)."""
    f = mouthbank.frame(lm)
    u = np.arange(-half, half + 0.25, 0.5)
    s = f.width / 2 + u
    xy = f.to_xy(s, f.t_up(s) + down).astype(np.float32)
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return u, cv2.remap(g, xy[None, :, 0], xy[None, :, 1], cv2.INTER_LINEAR)[0]


def _teeth_scale(src_img, src_lm, out_img, out_lm) -> float:
    """How many times wider the teeth across the output's opening are than the source's: the
    stretch of the source's grey-level profile through its teeth (gaps between teeth are its
    marks) that best matches the output's."""
    f0 = mouthbank.frame(src_lm)
    half = 0.3 * f0.width
    down = 0.3 * float(f0.t_lo(f0.width / 2) - f0.t_up(f0.width / 2))
    u, p0 = _teeth_profile(src_img, src_lm, down, half)
    _, p1 = _teeth_profile(out_img, out_lm, down, half)
    scores = {}
    for sg in np.arange(0.8, 1.61, 0.01):
        m = np.abs(u) <= half / max(sg, 1.0)
        scores[sg] = np.corrcoef(np.interp(u / sg, u, p0)[m], p1[m])[0, 1]
    return float(max(scores, key=scores.get))


def test_a_wider_smile_keeps_the_teeth_their_own_size():
    """064's smile with teeth made happier: the mouth widens 1.2x, and its teeth, which belong to
    the skull, keep their width (the warp stretched them to 1.21x, and squashed them to half
    their height; the smile in place at the wider mouth shows more of the dark corners)."""
    rgb, src, dst, out = _edit("064", "happy", "happy")
    assert mouth.teeth_showing(rgb, src)
    assert mouthbank.frame(dst).width / mouthbank.frame(src).width > 1.15  # the test means something
    assert abs(_teeth_scale(rgb, src, out, dst) - 1.0) < 0.06


def test_a_talking_mouth_made_happy_keeps_its_own_interior(monkeypatch):
    """An open mouth that shows more than its upper teeth (a talking mouth: obama2 from
    face_recognition's tests, looked at locally) made happy was repainted with one band of teeth
    over a brown cavity, a "denture". Synthesised here: 064's neutral photo made fearful at 0.6
    (lower teeth in a dark opening, its teeth band 0.39 of the opening), then happy. The warp's
    result is kept inside the new opening (before: 46 levels from it on average)."""
    rgb, face = _photo("064", "neutral")
    talking = edit(rgb, "fearful", 0.6, detections=[face], gate=False).image
    rgb2, faces = detect(talking)
    src = mouth.meet_closed_lips(talking, faces[0].landmarks)
    assert mouth.teeth_showing(talking, src) and mouth.teeth_fill(talking, src) < mouth.TEETH_FILL
    r = edit(talking, "happy", 1.0, detections=faces, gate=False)
    monkeypatch.setattr(mouth, "render_interior", lambda *a, **k: None)
    warped = edit(talking, "happy", 1.0, detections=faces, gate=False).image
    dst = r.faces[0].landmarks_after
    inside = _poly_mask(rgb.shape[:2], dst[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1]])
    diff = np.abs(r.image.astype(float) - warped)[inside].mean()
    assert diff < 2, f"{diff:.1f} levels from the warped interior"


def test_a_smile_made_happier_stays_as_open():
    """064's broad smile (lips 0.20 IOD apart) made happy: the smile's opening was closed and
    reopened by happy's own parting, narrower (0.135 IOD, a third of its teeth gone under the lower
    lip: a flatter mouth for "more smile"). It keeps at least the photo's opening and its teeth."""
    rgb, src, dst, out = _edit("064", "happy", "happy")
    gap = [lip_gap(pose_of(lm).to_canonical(lm.astype(np.float64))) for lm in (src, dst)]
    assert gap[0] > 0.15  # the test means something: a broad, open smile
    assert gap[1] >= gap[0] - 0.01, gap
    shown = _teeth_on_lips(out, dst, rgb, src) / _teeth_on_lips(rgb, src, rgb, src)
    assert shown > 0.85, f"{shown:.2f} of the photo's teeth pixels left"


def _enamel(img, rgb_src, lm_src):
    """Enamel-like pixels of `img`, against the source photo's skin brightness (the renderer's rule)."""
    return mouthbank.tooth_like(img, np.array([mouth._skin_brightness(rgb_src, lm_src)]))


def _lip_band(shape, lm, upper: bool):
    """One lip's red, outer edge (with the corners) to inner edge, as a mask."""
    outer, inner = (UPPER_RINGS[0], LIPS_INNER_UPPER) if upper else (LOWER_RINGS[0], LIPS_INNER_LOWER[::-1])
    return _poly_mask(shape, np.concatenate([lm[[61, *outer, 291], :2], lm[inner, :2]]))


@needs_shared
@pytest.mark.parametrize("face_id,before", [("139", 0.078), ("013", 0.20)])
def test_a_happier_smile_has_one_row_of_teeth(face_id, before):
    """139's and 013's smiles: the landmarker's inner lower lip runs across their teeth, so the
    warp carried the teeth below it as lower lip: made happier, a second row of teeth under the
    painted ones (enamel-like pixels in the lower lip's band: 7.8% and 20%). The inner lips are
    taken from the teeth's real edge (`mouth.on_teeth_edge`); a glossy lip keeps a few."""
    rgb, src, dst, out = _edit(face_id, "happy", "happy")
    moved = mouth.on_teeth_edge(rgb, src)
    down = float(np.hypot(*(moved - src)[LOWER_RINGS[3][4], :2])) / _iod(src)
    assert down > 0.01, f"the inner lower lip's middle moved {down:.3f} IOD"
    band = _lip_band(out.shape[:2], dst, upper=False)
    tooth = _enamel(out, rgb, src) & band
    assert tooth.sum() < 0.5 * before * band.sum(), f"teeth {tooth.sum() / band.sum():.3f} of the lower lip"


@needs_shared
def test_a_surprise_from_a_smile_leaves_no_teeth_on_the_upper_lip():
    """096's smile: the landmarker's inner upper lip lies 3 px inside the teeth. Moved onto the
    lip's edge by equal shares of the lip's rings, it went half a pixel (the smile's inner rings lie
    close together), and surprise's opening left the teeth above it as a white band along the
    upper lip (enamel-like pixels 14% of the lip's band); the rings now move by their depth."""
    rgb, src, dst, out = _edit("096", "happy", "surprised")
    band = _lip_band(out.shape[:2], dst, upper=True)
    tooth = _enamel(out, rgb, src) & band
    assert tooth.sum() < 0.08 * band.sum(), f"teeth {tooth.sum() / band.sum():.3f} of the upper lip"


@needs_shared
def test_a_smirk_corner_keeps_a_smooth_line_between_the_lips():
    """014's contempt pulls one corner up and aside: the exact, piecewise-affine map kinked the
    thin line between the lips at every thin triangle there, a dashed, jagged line (mean absolute
    Laplacian round the corner 8.36 against the photo's 7.45). Smoothed round the corners, the
    edit is no rougher there than the photo."""
    rgb, src, dst, out = _edit("014", "neutral", "contempt")
    r = int(0.1 * _iod(src))

    def rough(img, lm):
        lap = np.abs(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F))
        x, y = np.round(lm[291, :2]).astype(int)
        return float(lap[y - r:y + r, x - 2 * r:x + r].mean())

    assert rough(out, dst) < 0.97 * rough(rgb, src), (rough(out, dst), rough(rgb, src))


def test_closed_lips_have_no_teeth_edge_to_find():
    """A neutral photo (lips closed, no teeth) keeps its landmarks: the same array back."""
    rgb, face = _photo("064", "neutral")
    assert mouth.on_teeth_edge(rgb, face.landmarks) is face.landmarks


def _upper_lip_red(img, lm, dark=None) -> float:
    """The upper lip's red: CIELAB a* above the skin's just above the lip, summed down each column
    of the mouth's middle (0.4 of its width) to the lower inner lip, or with `dark` to the first
    pixel darker than that (L*: the opening); the median over the columns."""
    iod, width = _iod(lm), float(np.hypot(*(lm[291, :2] - lm[61, :2])))
    x = np.arange(int(lm[13, 0] - 0.2 * width), int(lm[13, 0] + 0.2 * width) + 1)
    lab = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[int(lm[0, 1] - 0.08 * iod):int(lm[14, 1]), x]
    a = lab[..., 1] - np.median(lab[:max(2, int(0.03 * iod)), :, 1])
    above = np.cumsum(lab[..., 0] < dark, axis=0) == 0 if dark else True
    return float(np.median((np.clip(a, 0, None) * above).sum(0)))


@pytest.mark.parametrize("emotion", ["fearful", "surprised"])
def test_an_opening_from_a_broad_smile_keeps_the_upper_lips_red(emotion):
    """A broad smile's upper lip, stretched thin over the teeth, reaches below the landmarker's
    inner edge (the astronaut: red 0.065 IOD tall at the middle, the mesh's lip 0.044), and the
    opening painted there took the red under it: fear kept 0.72 of the photo's upper-lip red
    above its opening, surprise 0.85, a skin-coloured rim over a dark hole. The lip now reaches
    to its red's real edge (`mouth.on_red_bottom`): 1.05 and 1.46."""
    rgb, faces = detect(TEST_DATA / "astronaut.jpg")
    r = edit(rgb, emotion, 1.0, detections=faces[:1], gate=False)
    before = _upper_lip_red(rgb, faces[0].landmarks)
    after = _upper_lip_red(r.image, r.faces[0].landmarks_after, dark=40.0)
    assert after > 0.95 * before, (after, before)


def test_a_slit_smile_opened_wider_shows_a_row_of_teeth():
    """083 smiles through a slit (a 5 px band of teeth); made happier, the opening is three times
    as tall. Its own teeth were a sliver over a dark band (teeth 14% of the opening, dark 28%);
    a full row of a bank exemplar's teeth fills it now, in the colour of her own."""
    rgb, src, dst, out = _edit("083", "happy", "happy")
    assert mouth.teeth_showing(rgb, src)  # the test means something: the person's own teeth show
    opening = _inner_mouth(out.shape[:2], dst)
    tooth = _enamel(out, rgb, src) & opening
    dark = (out.astype(np.float32).mean(-1) < 0.35 * mouth._lip_colour(rgb, src).mean()) & opening
    assert tooth.sum() > 0.3 * opening.sum(), f"teeth {tooth.sum() / opening.sum():.2f} of the opening"
    assert dark.sum() < 0.1 * opening.sum(), f"dark {dark.sum() / opening.sum():.2f} of the opening"
    # in the colour of her own teeth (the exemplar's were yellower: CIELAB distance 7.4)
    own = _inner_mouth(rgb.shape[:2], src) & _enamel(rgb, rgb, src)
    lab = [cv2.cvtColor(px[None].astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[0].mean(0) for px in (rgb[own], out[tooth])]
    assert np.linalg.norm(lab[0] - lab[1]) < 4.0, lab


def _teeth_on_lips(img, lm, rgb_src, lm_src):
    """Enamel pixels inside the outer lips: bright (as the renderer's own test) and stricter on
    colour (spread < 15% of the brightest channel), so a lit, pinkish lip corner is not a tooth."""
    outer = _poly_mask(img.shape[:2], lm[LIPS_OUTER])
    px = img.astype(np.float32)
    grey = px.max(-1) - px.min(-1) < 0.15 * px.max(-1)
    tooth = _enamel(img, rgb_src, lm_src) & grey
    return int((tooth & outer).sum())


CLOSING = [(f, e) for f in ("002", "025", "064") for e in ("neutral", "sad", "angry")]


def _inner_mouth(shape, lm, inset=0):
    """The inside of `lm`'s inner lips, `inset` pixels in from them."""
    poly = _poly_mask(shape, lm[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1]])
    if inset == 0:
        return poly
    return cv2.erode(poly.astype(np.uint8), np.ones((2 * inset + 1,) * 2, np.uint8)) > 0


@pytest.mark.parametrize("face_id", ["064", "013"])
def test_disgust_keeps_a_smiles_teeth_where_they_are(face_id):
    """Teeth belong to the skull: under disgust's raised lip a smile's own teeth stay where the
    photo has them. Warped with the lips (064) they were stretched into tall fangs over the lower
    row, a clenched grimace; painted from the lip (013, whose lips part further) a third of the
    band hung as a thin stroke over a black gap. The photo's enamel pixels that the new opening
    still shows are the photo's own (mean difference 36 and 171 grey levels before)."""
    rgb, src, dst, out = _edit(face_id, "happy", "disgusted")
    assert mouth.teeth_showing(rgb, src)
    m = _inner_mouth(rgb.shape[:2], dst, 2) & _inner_mouth(rgb.shape[:2], src, 2) & _enamel(rgb, rgb, src)
    assert m.sum() > 100
    assert np.abs(out[m].astype(np.float32) - rgb[m]).mean() < 12


def test_disgust_from_a_broad_smile_bares_a_dim_corridor_not_black_wedges():
    """The astronaut's broad smile keeps its teeth in place under disgust's raised lip; below the
    row's up-curved ends the new opening reaches towards the corners. That was painted as a wide
    opening's deep cavity, dimmed at its roof and corners: black bow-tie wedges (the darkest tenth
    of the opening's outer fifths 0.22 of the lips' brightness, its median 0.26). It is the
    photo's own corner shadow now, darker towards the corners (`mouth.CORRIDOR`): 0.30 and 0.33."""
    rgb, faces = detect(TEST_DATA / "astronaut.jpg")
    r = edit(rgb, "disgusted", 1.0, detections=faces[:1], gate=False)
    dst = r.faces[0].landmarks_after
    f, s, _ = _mouth_coords(rgb.shape[:2], dst)
    side = _inner_mouth(rgb.shape[:2], dst, 1) & (np.abs(2 * s / f.width - 1) > 0.6)
    assert side.sum() > 20
    grey = r.image.astype(np.float32).mean(-1)[side] / mouth._lip_colour(rgb, faces[0].landmarks).mean()
    assert np.percentile(grey, 10) > 0.27, np.percentile(grey, [10, 50])


@pytest.mark.parametrize("face_id", ["001", "021"])
def test_a_dropped_jaws_teeth_stay_a_row_not_an_arc(face_id):
    """Surprise's upper teeth belong to the skull: hung from the upper lip they followed its oval
    down the sides as a thin arc of small teeth (a zipper); on the closed lips' line, at the photo's
    own mouth's scale, they are a row at the middle. Bright pixels in the opening's upper half that
    lie in its outer thirds: 45-51% of them before, 23-31% now (001, 005, 013, 021, 064)."""
    rgb, src, dst, out = _edit(face_id, "neutral", "surprised")
    f, s, t = _mouth_coords(rgb.shape[:2], dst)
    inside = _inner_mouth(rgb.shape[:2], dst, 1)
    g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float32)
    teeth = inside & (g > 2.5 * np.median(g[inside])) & (t < (f.t_up(s) + f.t_lo(s)) / 2)
    assert teeth.sum() > 20
    assert np.mean(np.abs(s[teeth] - f.width / 2) > f.width / 6) < 0.38


def test_a_thin_band_of_teeth_is_not_smeared_up():
    """105's smile shows a thin band of teeth that disgust's lip rises far past: kept in place they
    would run up in vertical streaks, so the renderer declines (None) and leaves the pixels."""
    for face_id, declined in (("105", True), ("064", False)):  # 064: a full band, kept
        rgb, src, dst, _ = _edit(face_id, "happy", "disgusted")
        region = warp.region_for(src, rgb.shape[:2])
        before = rgb[region.y0:region.y1, region.x0:region.x1]
        warped = before.copy()
        painted = mouth.render_interior(rgb, src, dst, warped, region, _iod(src), upper_teeth=0.3,
                                        jaw_closed=True, in_place=True, only_in_place=True)
        assert (painted is None) == declined, face_id
        if declined:
            assert np.array_equal(warped, before)


@pytest.mark.parametrize("face_id,emotion", [
    pytest.param(f, e, marks=[needs_shared] if f in SHARED_ONLY else [], id=f"{f}-{e}") for f, e in CLOSING])
def test_closing_a_smile_leaves_no_teeth(face_id, emotion):
    """A London smile with teeth -> neutral / sad / angry: the lips close over the teeth (no
    enamel-like pixel inside the outer lips) and the mouth reads as closed."""
    rgb, src, dst, out = _edit(face_id, "happy", emotion)
    assert mouth.teeth_showing(rgb, src), f"{face_id} was chosen for a smile that shows teeth"
    assert _teeth_on_lips(rgb, src, rgb, src) > 200  # the input does show them
    n = _teeth_on_lips(out, dst, rgb, src)
    # Real closed lips have sheen that this counts too: 0-130 pixels on the 43 London neutral
    # photos with closed lips (7 over 5), so a few are allowed; the teeth were hundreds.
    assert n <= 20, f"{n} teeth pixels left"
    assert not mouth.teeth_showing(out, dst)


def _lips_off_the_line(shape, lm, reach_px: float) -> np.ndarray:
    """Pixels inside the outer lips of `lm` more than `reach_px` from the line where they meet
    (the inner-lip pairs' midpoints), as a mask."""
    mid = (lm[mouth._UPPER_INNER, :2] + lm[mouth._LOWER_INNER, :2]) / 2
    line = np.full(shape, 255, np.uint8)
    cv2.polylines(line, [np.round(mid).astype(np.int32)], False, 0, 1)
    return (cv2.distanceTransform(line, cv2.DIST_L2, 3) > reach_px) & _poly_mask(shape, lm[LIPS_OUTER])


def _dark_off_the_line(img, lm, rgb_src, lm_src) -> float:
    """Pixels inside the outer lips darker than half the lips' brightness and more than 0.03 IOD
    from the line where the lips meet (the inner-lip pairs' midpoints), / IOD^2."""
    dark = img.astype(np.float32).mean(-1) < 0.5 * mouth._lip_colour(rgb_src, lm_src).mean()
    iod = _iod(lm_src)
    return float((dark & _lips_off_the_line(img.shape[:2], lm, 0.03 * iod)).sum()) / iod ** 2


@pytest.mark.parametrize("face_id", [pytest.param(f, marks=[needs_shared] if f != "025" else [])
                                     for f in ("002", "013", "107", "117", "025")])
def test_a_closed_smile_keeps_no_dark_gap_on_the_lips(face_id):
    """The dark gaps of a smile (its corners, the shadow between teeth and lips) were warped onto
    the closed lips and left as blobs at the corners and a ragged second line: 135, 127, 94 and 43
    pixels darker than half the lips' brightness on 013, 002, 107 and 117 (0.002-0.004 IOD^2).
    A real meeting line is that dark too (the 43 London neutral photos with closed lips: median
    0.0009 IOD^2, up to 0.0039), so what is counted is the dark more than 0.03 IOD away from it:
    real closed lips median 0.0003, up to 0.0012 (025's dark mouth corners); these edits 0-0.0001."""
    rgb, src, dst, out = _edit(face_id, "happy", "neutral")
    assert mouth.teeth_showing(rgb, src)
    assert _dark_off_the_line(out, dst, rgb, src) < 0.0004


def _dark_beside_corners(img: np.ndarray, lm: np.ndarray) -> int:
    """Pixels within 0.06 IOD of either mouth corner, outside the lips, darker than 0.6 of the skin
    round that corner (its median 0.12-0.18 IOD away)."""
    iod = _iod(lm)
    lips = _poly_mask(img.shape[:2], lm[LIPS_OUTER])
    grey = img.astype(np.float32).mean(-1)
    worst = 0
    for c in (61, 291):
        x, y = lm[c, :2]
        r = max(2, int(0.06 * iod))
        yy, xx = np.mgrid[int(y) - 3 * r:int(y) + 3 * r + 1, int(x) - 3 * r:int(x) + 3 * r + 1]
        d = np.hypot(xx - x, yy - y)
        skin = np.median(grey[yy, xx][(d > 2 * r) & (d <= 3 * r)])
        worst = max(worst, int(((d <= r) & ~lips[yy, xx] & (grey[yy, xx] < 0.6 * skin)).sum()))
    return worst


@pytest.mark.parametrize("emotion", ["sad", "neutral"])
def test_a_smiles_dark_corners_do_not_stay_beside_the_closed_lips(emotion):
    """A smile's dark corners (the gap between the teeth and the cheek) can land just beyond the
    closed lips' corners, where the closing did not look for them: a dark patch stayed beside 021's
    closed mouth (sad: 72 pixels darker than 0.6 of the skin round the corner, neutral 28; 061 on
    the tune half kept a dark square). Dark pixels within CORNER_REACH of the closed corners are
    gap too: 0 on 021 (real neutral London photos: up to 8.6 per 100 x 100 IOD px, most under 5)."""
    rgb, src, dst, out = _edit("021", "happy", emotion)  # parted over shadowed teeth
    assert _dark_beside_corners(rgb, src) > 30  # the smile's own dark corners
    assert _dark_beside_corners(out, dst) <= 5


@pytest.mark.parametrize("face_id", ["005", "021", "025"])
def test_real_closed_lips_take_the_persons_colour_and_meet_on_their_line(face_id):
    """`lipbank.render` on a real neutral photo's own closed lips (the person left out of the
    bank), along a band round the meeting line: the exemplar's meeting line (its darkest row) lands
    on the target's line, the band takes the person's lip colour, and nothing outside the mask
    changes. Colour: the band's mean is within 10 Lab units of the photo's own (L 5-9 darker: the
    exemplars' lines are darker than these three people's; a, b within 2.2). With the gain
    switched off, 021 (L 10.3, a 4.9 off) and 025 fail: pick already prefers like-coloured lips."""
    rgb, faces = detect(london(face_id, "neutral"))
    lm = mouth.meet_closed_lips(rgb, faces[0].landmarks)
    iod = float(np.hypot(*(lm[263, :2] - lm[33, :2])))
    x0, y0 = np.floor(lm[LIPS_OUTER, :2].min(0)).astype(int) - 4
    x1, y1 = np.ceil(lm[LIPS_OUTER, :2].max(0)).astype(int) + 4
    crop = rgb[y0:y1, x0:x1].copy()
    mid = (lm[mouth._UPPER_INNER, :2] + lm[mouth._LOWER_INNER, :2]) / 2 - [x0, y0]
    band = np.zeros(crop.shape[:2], np.uint8)
    cv2.polylines(band, [np.round(mid).astype(np.int32)], False, 1, max(3, round(0.06 * iod)))
    lips = _poly_mask(crop.shape[:2], lm[LIPS_OUTER] - [x0, y0, 0][: lm.shape[1]])
    keep = lips & (cv2.dilate(band, np.ones((3, 3), np.uint8)) == 0)
    with mouthbank.leaving_out(face_id):
        a = lipbank.render(crop, np.array([x0, y0], np.float64), lm, band.astype(np.float32), keep, iod,
                           mouth._lip_colour(rgb, lm), mouthbank.skin_colour(rgb, lm))
    assert a is not None and (a > 0.99).sum() > 100
    before = rgb[y0:y1, x0:x1]
    assert (crop[a == 0] == before[a == 0]).all()
    full = a > 0.99
    lab_out = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)[full].astype(np.float32).mean(0)
    lab_own = cv2.cvtColor(np.ascontiguousarray(before), cv2.COLOR_RGB2LAB)[full].astype(np.float32).mean(0)
    assert np.abs(lab_out - lab_own).max() < 10, (lab_out, lab_own)
    grey = cv2.GaussianBlur(crop.astype(np.float32).mean(-1), (3, 3), 0)
    off = []
    for x, y in mid[2:-2]:  # the central pairs: the corners are faded out
        xi, ya, yb = int(round(x)), int(round(y - 0.04 * iod)), int(round(y + 0.04 * iod)) + 1
        off.append(abs(ya + int(np.argmin(grey[ya:yb, xi])) - y) / iod)
    assert np.median(off) < 0.012, np.round(off, 3)


@pytest.mark.parametrize("face_id", ["013", "064", "105"])
def test_closed_lips_come_from_an_exemplar_whose_warp_does_not_fold(face_id):
    """A closed smile's real lips are a bank exemplar warped by the lips' triangles onto the target.
    The exemplar chosen for its thickness and colour alone could turn many of them over (013's
    070: 17), and its meeting line came out folded into loops beside the target's line (013), a
    doubled dark band (064) or a thick slit (105): the darkest row lay 1.25, 1.63 and 1.31 px
    (median) from the line where the lips meet. Exemplars turning over more than
    `lipbank.FLIP_MAX` are passed over: 0.49, 0.26 and 0.85 px (real closed lips' exemplars
    0.3-1.0 on the tune half's other closings)."""
    with mouthbank.leaving_out(face_id):
        rgb, src, dst, out = _edit(face_id, "happy", "neutral")
    lm = mouth._met_halfway(dst)
    assert mouth.teeth_showing(rgb, src)
    assert _line_offset(out, lm) < 1.0
    b = lipbank.bank()
    with mouthbank.leaving_out(face_id):
        i = lipbank.pick(b, lipbank.lip_shape(lm), mouth._lip_colour(rgb, src), mouthbank.skin_colour(rgb, src),
                         lipbank.flips(b, lm))
    assert lipbank.flips(b, lm)[i] <= lipbank.FLIP_MAX


def _repainted_off_the_line(face_id, monkeypatch) -> float:
    """A smile with teeth closed to neutral, shading left out: the share of the closed lips' pixels
    more than 0.06 IOD from the line where they meet that the mouth stage changed (by more than 8
    grey levels in any channel) from what the warp put there."""
    from pipeline.engines.geometric import shading

    rgb, face = _photo(face_id, "happy")
    assert mouth.teeth_showing(rgb, face.landmarks), f"{face_id} was chosen for a smile with teeth"
    with monkeypatch.context() as m:
        m.setattr(shading, "render", lambda *a, **k: None)
        with mouthbank.leaving_out(face_id):
            r = edit(rgb, "neutral", 1.0, detections=[face], gate=False)
        m.setattr(mouth, "render_interior", lambda *a, **k: None)  # the warp alone
        warped = edit(rgb, "neutral", 1.0, detections=[face], gate=False).image
    dst = r.faces[0].landmarks_after
    far = _lips_off_the_line(rgb.shape[:2], dst, 0.06 * _iod(dst))
    changed = np.abs(r.image.astype(int) - warped).max(-1) > 8
    return float(changed[far].mean())


@pytest.mark.parametrize("face_id", [pytest.param(f, marks=[needs_shared] if f in ("061", "102") else [])
                                     for f in ("083", "105", "064", "061", "102")])
def test_a_closed_smile_keeps_its_own_lips_away_from_where_they_meet(face_id, monkeypatch):
    """Closing a smile's lips over its teeth replaces what lies between them (teeth, the dark gap)
    and a band along the line where they meet with real closed lips. Every enamel-like or dark
    pixel anywhere on the lips used to count as left-over teeth: a glossy lower lip's highlights
    (083, 102) and a dark lip's own shading (061, a black face) were inpainted and covered with a
    bank exemplar's lips, pale and sheened on 061, and cut off along the lips' outline on 102 (a
    straight edge across its lower lip). Teeth are only looked for near the gap now: of the lips'
    pixels over 0.06 IOD from the meeting line the mouth stage changed 13-57% before (083 57%,
    105 36%, 064 13%, 061 35%, 102 44%), 0.2-3.8% now."""
    assert _repainted_off_the_line(face_id, monkeypatch) < 0.1


@pytest.mark.parametrize("face_id", ["001", "021", "025", "064"])
def test_a_dropped_jaw_opens_onto_a_lit_cavity_not_a_hole(face_id):
    """Surprise's open mouth was filled near-black (the cavity's middle at 0.13-0.16 of the lips'
    brightness): a hole cut in the photo. It is lit now (0.21-0.26 of the lips), still far darker
    than any lip. (Lit more at its walls, 0.24-0.29, it showed a grey ring round the hole.)"""
    rgb, src, dst, out = _edit(face_id, "neutral", "surprised")
    inner = _inner_mouth(out.shape[:2], dst)
    core = cv2.erode(inner.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    cavity = np.median(out.astype(np.float32).mean(-1)[core]) / mouth._lip_colour(rgb, src).mean()
    assert 0.18 < cavity < 0.45, cavity


def _surprise_middle(face_id):
    """Surprise from the neutral photo: (output, the middle fifth of the inner mouth (mask), each
    pixel's depth down the opening (0 at the upper lip, 1 at the lower), the lips' brightness)."""
    rgb, src, dst, out = _edit(face_id, "neutral", "surprised")
    inner = _inner_mouth(out.shape[:2], dst)
    f, s, t = _mouth_coords(out.shape[:2], dst)
    down = (t - f.t_up(s)) / np.maximum(f.t_lo(s) - f.t_up(s), 1.0)
    return out, inner & (np.abs(s / f.width - 0.5) < 0.2), down, float(mouth._lip_colour(rgb, src).mean())


@pytest.mark.parametrize("face_id", ["001", "025"])
def test_a_dropped_jaw_shows_its_tongue(face_id):
    """Below the middle of surprise's opening lies the tongue, red and lit on its top: at 0.38-0.39
    of the lips' brightness (the throat above it 0.20-0.25) it read as a dark hole with a faint red
    floor. Now 0.56-0.58 on these photos (0.62-0.63 before its crown was softened), red ((R - G) / R
    over 0.4), the throat as dark. Its front, just above the lower lip, is in that lip's shade
    (0.49-0.52): lit most there (0.84-0.87) the floor of the mouth glowed salmon-pink."""
    out, middle, down, lips = _surprise_middle(face_id)
    tongue = out[middle & (down > 0.7) & (down < 0.9)].astype(np.float32).mean(0)
    throat = out[middle & (down > 0.3) & (down < 0.5)].astype(np.float32).mean(0)
    front = out[middle & (down > 0.9) & (down < 1.0)].astype(np.float32).mean(0)
    assert tongue.mean() / lips > 0.5 and throat.mean() / lips < 0.3, (tongue, throat, lips)
    assert (tongue[0] - tongue[1]) / tongue[0] > 0.4, tongue
    assert front.mean() < 0.9 * tongue.mean(), (front, tongue)


@pytest.mark.parametrize("face_id", ["001", "025"])
def test_a_dropped_jaws_tongue_rises_softly_out_of_the_dark(face_id):
    """The tongue's lit crown drew a straight edge across surprise's opening, a salmon band like a
    second lower lip: down the middle, brightness rose by 0.19-0.20 of the lips' between
    neighbouring twentieths of the depth. It rises over a longer reach now: at most 0.13."""
    out, middle, down, lips = _surprise_middle(face_id)
    lum = out.astype(np.float32).mean(-1)
    prof = [lum[middle & (down > a) & (down < a + 0.05)].mean() / lips for a in np.arange(0.3, 0.95, 0.05)]
    assert np.diff(prof).max() < 0.16, np.round(prof, 2)


@pytest.mark.parametrize("face_id", ["021", "070"])
def test_a_dropped_jaws_tongue_is_a_dome_fading_out_of_the_dark(face_id):
    """Surprise's tongue was a flat salmon half under a flat dark half, split by a level, crisp
    edge: its crown, set as a share of each column's height, ran level across the oval. It is a
    dome now: across a level band at 0.6-0.7 of the middle's depth, its sides (0.2-0.3 of the width
    off the middle) were as bright as its middle (0.93-1.10 on the tune half), now 0.69-0.75; and
    down the middle it fades in over a longer reach: from a quarter to three quarters of the way
    from the cavity to its brightest over 0.074-0.090 of the depth before (tune half), 0.11-0.125 now."""
    rgb, src, dst, out = _edit(face_id, "neutral", "surprised")
    inner = _inner_mouth(out.shape[:2], dst)
    f, s, t = _mouth_coords(out.shape[:2], dst)
    mid = f.width / 2
    level = (t - f.t_up(mid)) / (f.t_lo(mid) - f.t_up(mid))  # depth in the middle's height
    u = np.abs(s / f.width - 0.5)
    lum = out.astype(np.float32).mean(-1)
    band = inner & (level > 0.6) & (level < 0.7)
    assert lum[band & (u > 0.2) & (u < 0.3)].mean() < 0.85 * lum[band & (u < 0.1)].mean()
    _, middle, down, lips = _surprise_middle(face_id)
    at = np.arange(0.3, 0.95, 0.025)
    prof = np.array([lum[middle & (down > a) & (down < a + 0.025)].mean() for a in at])
    lo, top = np.median(prof[at < 0.45]), prof.argmax()
    q = np.interp([lo + 0.25 * (prof[top] - lo), lo + 0.75 * (prof[top] - lo)],
                  np.maximum.accumulate(prof[:top + 1]), at[:top + 1])
    assert q[1] - q[0] > 0.1, np.round(prof / lips, 2)


def test_fears_lower_teeth_bring_no_gums():
    """Fear's lower teeth are a bank exemplar's upper teeth mirrored; a broad smile's exemplar shows
    gums and lip corners round its teeth, which mirrored drew a pink arch round the lower teeth (021:
    80 pink pixels inside the opening; 014, 070, 123 on the tune half: 83, 64, 44). Only the teeth
    are taken now (redness under GUM_RED)."""
    rgb, src, dst, out = _edit("021", "neutral", "fearful")
    inner = _inner_mouth(out.shape[:2], dst)
    core = cv2.erode(inner.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    px = out.astype(np.float32)
    red = (px[..., 0] - px[..., 1:].mean(-1)) / np.maximum(px[..., 0], 1)
    teeth = core & (px.mean(-1) > 1.2 * mouth._lip_colour(rgb, src).mean())
    pink = core & (red > 0.3) & (px.mean(-1) > 0.6 * mouth._lip_colour(rgb, src).mean())
    assert teeth.sum() > 100 and pink.sum() == 0, (int(teeth.sum()), int(pink.sum()))


@pytest.mark.parametrize("emotion", ["happy", "surprised", "fearful"])
def test_a_black_and_white_photo_gets_a_grey_mouth(emotion):
    """The bank's teeth and the painted cavity carry London's colour: a black-and-white photo's new
    mouth came out brown and pink (up to 28 grey levels between channels). It now stays grey."""
    rgb = cv2.cvtColor(_photo("021", "neutral")[0], cv2.COLOR_RGB2GRAY)
    out = edit(np.repeat(rgb[..., None], 3, -1), emotion, 1.0, gate=False).image.astype(int)
    assert (out.max(-1) - out.min(-1)).max() <= 1


def test_teeth_are_seen_where_the_inner_lips_take_in_much_of_the_lips():
    """105's smile shows teeth, but the landmarker's inner lips take in much of the lips, so only 20%
    of the opening is enamel (the share rule needs 20%+); its enamel area (0.0086 IOD^2) is more
    than twice any real neutral face's. Unseen, its teeth were squeezed into pale grey dashes on
    the closed lips (6 px paler and greyer than the lips); seen, closing inpaints them (0)."""
    rgb, src, dst, out = _edit("105", "happy", "neutral")
    assert mouth.teeth_showing(rgb, src)
    outer = _poly_mask(out.shape[:2], dst[LIPS_OUTER])
    px = out.astype(np.float32)
    lip = mouth._lip_colour(rgb, src)
    pale_grey = (px.mean(-1) > 1.1 * lip.mean()) & (px.max(-1) - px.min(-1) < 0.6 * (lip.max() - lip.min()))
    assert int((outer & pale_grey).sum()) == 0


def _bright_in_eyes(src_rgb, img, lm):
    """Pixels in (and just around) the eyes brighter than the person's own upper-lid skin: the
    white of the eye (and catch-lights), which a closed lid hides."""
    iod = _iod(lm)
    eyes = np.zeros(img.shape[:2], np.uint8)
    lid = np.zeros_like(eyes)
    for eye, up in ((EYE_L, LID_UP_L), (EYE_R, LID_UP_R)):
        cv2.fillPoly(eyes, [np.round(lm[eye, :2]).astype(np.int32)], 1)
        band = np.concatenate([lm[up, :2] - [0, 0.04 * iod], (lm[up, :2] - [0, 0.12 * iod])[::-1]])
        cv2.fillPoly(lid, [np.round(band).astype(np.int32)], 1)
    lum = cv2.cvtColor(src_rgb, cv2.COLOR_RGB2LAB)[..., 0].astype(float)
    lid_max = np.percentile(lum[lid > 0], 98)
    near = cv2.dilate(eyes, np.ones((int(0.06 * iod) | 1,) * 2, np.uint8)) > 0
    out = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)[..., 0].astype(float)
    return int(((out > lid_max + 4) & near).sum()), int(eyes.sum())


@pytest.mark.parametrize("face_id", ["001", "021", "025"])
def test_closed_eyes_show_no_white(face_id):
    """AU43 = 1 lays the upper lid over the eye: at most 6% of the eye's area stays brighter than
    the lid skin (the inner corners' caruncle), against 15-20% before and most of it open."""
    rgb, src, _dst, out = _edit(face_id, "neutral", "neutral", {"AU43": 1.0})
    before, area = _bright_in_eyes(rgb, rgb, src)
    after, _ = _bright_in_eyes(rgb, out, src)
    assert before > 0.04 * area  # the open eye does show its white
    assert after <= 0.06 * area, f"{after} of {area} eye pixels still bright"


def test_closed_mouth_smile():
    """A smile without AU25 (`neutral` + AU12 1.1 + AU6 1.0, the issue's setting: `aus` cannot take
    happy's AU25 2.4 away, as AUs are capped at 1.5): the corners rise as much as in the open
    smile (at least half as much: see below), and the lips stay together: no opening is painted, no teeth show."""
    rgb, src, dst, out = _edit("001", "neutral", "neutral", {"AU12": 1.1, "AU6": 1.0})
    _, _, dst_open, out_open = _edit("001", "neutral", "happy")
    m0, m1, m_open = measures(src), measures(dst), measures(dst_open)
    # corner_lift is measured from the lips' centre, which an opening lowers: the open smile reads more.
    assert m1["corner_lift"] - m0["corner_lift"] > 0.5 * (m_open["corner_lift"] - m0["corner_lift"]) > 0.02
    assert m1["lip_gap"] <= m0["lip_gap"] + 0.01
    # 001's pale lips have some enamel-bright pixels of their own: the open smile's teeth add many.
    n0, n1 = _teeth_on_lips(rgb, src, rgb, src), _teeth_on_lips(out, dst, rgb, src)
    assert n1 <= 1.3 * n0 and _teeth_on_lips(out_open, dst_open, rgb, src) > 2 * n0


def test_grainy_photo_gets_grainy_teeth():
    """On a noisy photo the painted interior carries the photo's grain, not a clean paste: the
    fine detail inside the teeth is at least half the noise added to the photo."""
    rgb, _face = _photo("001", "neutral")
    noisy = np.clip(rgb + np.random.default_rng(1).normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)
    faces = detect(noisy)[1]
    r = edit(noisy, "happy", 1.0, detections=faces[:1], gate=False)
    dst = r.faces[0].landmarks_after
    f = mouthbank.frame(dst)
    # Sample the opening at full resolution (the rectified copy is shrunk): its high-pass spread.
    core = cv2.erode(_poly_mask(r.image.shape[:2], dst[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1]]).astype(np.uint8),
                     np.ones((2 * int(0.04 * f.width) + 1,) * 2, np.uint8)) > 0
    g = r.image.astype(np.float32).mean(-1)
    hp = g - cv2.blur(g, (3, 3))
    assert core.sum() > 100
    sigma = float(np.median(np.abs(hp[core])) * 1.4826 * 1.125)
    assert sigma > 4.0, f"grain inside the mouth {sigma:.1f} vs 8 added"


def _shading_gain(rgb, face, emotion):
    """out / in of the shading stage alone (region-sized float32), the warped face as its input."""
    from pipeline.engines.geometric import shading

    p = plan(face.landmarks, emotion, 1.0)
    region = warp.region_for(face.landmarks, rgb.shape[:2])
    mapping, _ = warp.backward_map(face.landmarks, p.target, region)
    warped = warp.remap(rgb, mapping)
    before = warped.astype(np.float32)
    shading.render(warped, p.target, p.applied, region, p.pose.s)
    g = cv2.GaussianBlur(warped.astype(np.float32).mean(-1), (0, 0), 1.5) / np.maximum(cv2.GaussianBlur(before.mean(-1), (0, 0), 1.5), 1)
    full = np.ones(rgb.shape[:2], np.float32)
    full[region.slices] = g
    return full


@pytest.mark.parametrize("emotion", ["happy", "angry"])
def test_folds_turn_with_the_head(emotion):
    """The shading's ratio image on 001 tilted by 25 degrees, turned back, matches the upright one
    (correlation > 0.7 where either shades; 0.41 and 0.57 before, when folds were placed in image
    axes): folds follow the face."""
    rgb, face = _photo("001", "neutral")
    h, w = rgb.shape[:2]
    c = tuple(face.landmarks[:, :2].mean(0))
    rot = cv2.getRotationMatrix2D(c, 25, 1.0)
    tilted = cv2.warpAffine(rgb, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    g0 = _shading_gain(rgb, face, emotion)
    g1 = _shading_gain(tilted, detect(tilted)[1][0], emotion)
    back = cv2.warpAffine(g1, cv2.invertAffineTransform(rot), (w, h), flags=cv2.INTER_LINEAR, borderValue=1.0)
    m = (np.abs(g0 - 1) > 0.01) | (np.abs(back - 1) > 0.01)
    assert m.sum() > 500
    r = _ncc(g0, back, m)
    assert r > 0.7, f"upright vs tilted shading: correlation {r:.2f}"


def _furrow_darkening(weights: dict, up: float) -> list[float]:
    """How much the shading darkens 001's neutral face (share of its grey level) `up` IOD above
    where each corrugator furrow starts (inside the brow's head), for the AU `weights`."""
    from pipeline.engines.geometric import shading

    rgb, face = _photo("001", "neutral")
    lm = face.landmarks
    p, region = lm[:, :2], warp.region_for(lm, rgb.shape[:2])
    iod = _iod(lm) * 0.69  # the pose scale the engine draws in
    _, _, v = shading._axes(p.astype(np.float32), iod)
    sub = rgb[region.slices].copy()
    shading.render(sub, lm, weights, region, iod)
    g0, g1 = rgb[region.slices].astype(np.float32).mean(-1), sub.astype(np.float32).mean(-1)
    out = []
    for a, b in ((107, 55), (336, 285)):
        c = (p[a] + p[b]) / 2
        x, y = np.round(c + (p[9] - c) * 0.35 + v(0, -up) - [region.x0, region.y0]).astype(int)
        out.append(1 - g1[y, x] / g0[y, x])
    return out


def test_a_frown_under_raised_brows_ends_at_their_heads():
    """Sadness's and fear's corrugator furrows (AU4 with the inner brows raised, AU1) ran 0.08 IOD
    up the forehead: two parallel strokes above the brows. They end at the brows' heads now; an
    angry frown's (no AU1) still reaches up."""
    assert min(_furrow_darkening({"AU4": 1.0}, 0.06)) > 0.03
    assert max(_furrow_darkening({"AU1": 1.0, "AU4": 1.0}, 0.06)) < 0.01


def test_disgust_wrinkles_the_nose_not_the_brows():
    """Disgust's lowered brows (AU4 under a stronger nose wrinkle, AU9) drew anger's vertical
    corrugator furrows between the brows; the nose root's own lines are disgust's. Anger (AU4
    above AU9) keeps its furrows."""
    assert max(_furrow_darkening({"AU9": 2.8, "AU4": 1.0}, 0.0)) < 0.01
    assert min(_furrow_darkening({"AU9": 1.0, "AU4": 2.0}, 0.0)) > 0.03


@pytest.mark.parametrize("emotion", ["disgusted", "sad", "happy"])
def test_narrowed_eyes_keep_their_eyeball(emotion):
    """Lids that narrow the eye (disgust's squint, sadness's heavy lids, a smile's raised lower
    lids) squashed the iris with them (001: 12-18 grey levels off the photo inside the new
    opening); the eyeball stays in the skull now, the lids cover it: inside the new opening
    (2 px in from the lids) every pixel is the photo's own."""
    rgb, _, lm, out = _edit("001", "neutral", emotion)
    for eye in (EYE_L, EYE_R):
        m = cv2.erode(_poly_mask(rgb.shape[:2], lm[eye]).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert m.sum() > 50
        assert np.abs(out[m].astype(np.float32) - rgb[m]).mean() < 1.5


def _run(line, i):
    """(first, last) index of the run of True in `line` through index `i`."""
    gaps = np.flatnonzero(~line)
    return gaps[gaps < i].max(initial=-1) + 1, gaps[gaps > i].min(initial=line.size) - 1


def _iris_height_width(img, lm, eye):
    """(height, width) px of the iris inside an eye's opening (outline `lm[eye]`, a pixel in): the
    biggest dark patch of Otsu's split of the opening's grey levels, its catchlights filled; its
    height through its fullest column (up to the lashes where it reaches them), its width over
    the rows where the opening's white lies on both sides of it (not along the lashes' band)."""
    m = cv2.erode(_poly_mask(img.shape[:2], lm[eye]).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    g = cv2.GaussianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    thr, _ = cv2.threshold(np.clip(g[m], 0, 255).astype(np.uint8)[:, None], 0, 255,
                           cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    _, lab, stats, _ = cv2.connectedComponentsWithStats((m & (g < thr)).astype(np.uint8), connectivity=8)
    iris = lab == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])
    outside = np.pad(~iris, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 2)
    iris |= outside[1:-1, 1:-1] == 1  # the holes: catchlights
    cx = int(np.argmax(iris.sum(0)))
    ys = np.flatnonzero(iris[:, cx - 1:cx + 2].any(1))
    runs = [(y, *_run(iris[y], cx)) for y in ys if iris[y, cx]]
    return ys[-1] - ys[0] + 1, max((b - a + 1 for y, a, b in runs if m[y, a - 1] and m[y, b + 1]), default=0)


@pytest.mark.parametrize("face_id", ["013", "021", pytest.param("136", marks=needs_shared)])
def test_a_raised_lid_keeps_the_iris_round(face_id):
    """Surprise's raised upper lid (AU5) stretched the iris with it into a tall oval (013's and
    136's 1.2-1.3 times as tall as wide, its top running up into the lashes); the lid rises over
    the photo's own eyeball now, the iris kept round, white showing above it: neither eye's iris
    is taller than it is wide by more than a tenth (the lower lid may hide its bottom)."""
    _, _, lm, out = _edit(face_id, "neutral", "surprised")
    for eye in (EYE_L, EYE_R):
        h, w = _iris_height_width(out, lm, eye)
        assert w >= 0.08 * _iod(lm), f"{w} px: no iris found"
        assert h <= 1.1 * w, f"iris {h} px tall, {w} px wide"


@pytest.mark.parametrize("face_id", ["005", "070", pytest.param("096", marks=needs_shared),
                                     pytest.param("123", marks=needs_shared)])
def test_a_raised_lid_over_an_iris_it_cannot_read_keeps_the_stretch(face_id, monkeypatch):
    """Where the photo's iris cannot be read surely (005, 070: no circle fits it; 096: its cornea
    shows well above the mesh's lid line, which the iris's top would ride up with; 123: the lid
    uncovers a grey iris's pupil, whose edge cannot be read), neither eye is painted: the edit is
    the mesh's stretch, to the byte."""
    answers = []
    read = eyes.raised_lids
    monkeypatch.setattr(eyes, "raised_lids", lambda *a: answers.append(read(*a)) or answers[-1])
    _, _, _, out = _edit(face_id, "neutral", "surprised")
    assert answers == [None]  # asked, and declined
    monkeypatch.setattr(eyes, "raised_lids", lambda *a: None)
    _, _, _, stretch = _edit(face_id, "neutral", "surprised")
    assert np.array_equal(out, stretch)


def test_folds_go_deeper_on_darker_skin():
    """A fold darkens by a fraction of the skin's brightness, which on dark skin is a few grey
    levels: the drawn folds show more as the skin darkens, more by their lit side (a crease's
    sheen) than by their shadow (shadow by the gain alone painted dark strokes). The same photo
    (001, angry) at 40% exposure gets deeper folds and brighter highlights beside them, and the
    real dark-skinned 025 gets a larger gain than the light-skinned 001."""
    from pipeline.engines.geometric import shading

    rgb, face = _photo("001", "neutral")
    dim = (rgb.astype(np.float32) * 0.4).astype(np.uint8)
    gains = [_shading_gain(im, face, "angry") for im in (rgb, dim)]
    depth = [1 - float(g.min()) for g in gains]
    sheen = [float(g.max()) - 1 for g in gains]
    assert depth[1] > 1.3 * depth[0], depth
    assert sheen[1] / sheen[0] > depth[1] / depth[0], (sheen, depth)

    def gain(face_id):
        im, f = _photo(face_id, "neutral")
        region = warp.region_for(f.landmarks, im.shape[:2])
        return shading._contrast_gain(im[region.slices], f.landmarks[:, :2], region)

    assert gain("001") < 1.1 and gain("025") > 1.3, (gain("001"), gain("025"))


@pytest.mark.parametrize("width", [0.01, 0.012])
def test_a_fine_wrinkle_carries_the_same_ink_on_a_small_face(width):
    """A drawn line can be no thinner than a pixel: on t1.jpg's faces (60 px between the eyes) the
    nose wrinkles (0.01 IOD) were drawn 1 px wide, 1.7 times their ink per IOD of length, and read
    as pencil strokes. The darkening summed over a 1 IOD line, per IOD of length, on a 60 px and a
    96 px face now agrees within 10% (1.63x before, both widths)."""
    from pipeline.engines.geometric import shading

    ink = []
    for iod in (60.0, 96.0):
        n = int(3 * iod)
        cv = shading._Canvas((n, n), warp.Region(0, 0, n, n), iod)
        cv.line(np.array([[iod, 1.5 * iod], [2 * iod, 1.5 * iod]]), 0.3, width)
        ink.append(float(cv.dark.sum()) / iod ** 2)
    assert 0.9 < ink[0] / ink[1] < 1.1, ink


@needs_shared
def test_smile_shading_is_measured_on_real_smiles(tmp_path):
    """weights/smile_shading.npz is what scripts/build_smile_shading.py measures on the 68 London
    pairs (rebuilt here), and it darkens the nasolabial folds and lifts the cheeks."""
    from pipeline.engines.geometric import foldmap

    from .conftest import load_script

    out = tmp_path / "s.npz"
    load_script("build_smile_shading").main(["--out", str(out)])
    z, ref = np.load(out), np.load(foldmap.MAP_PATH)
    assert int(z["n"]) == 68 and np.array_equal(z["log_ratio"], ref["log_ratio"])
    fm = foldmap.fold_map()
    mean = foldmap._mean_px()
    fold = (mean[129] + mean[61]) / 2  # between the nose wing and the mouth corner
    y, x = np.round(fold[::-1]).astype(int)
    assert fm.log_ratio[y - 2:y + 3, x - 2:x + 3].mean() < -0.02


def test_the_lip_banks_exemplars_meet_on_their_own_dark_line():
    """Each lip-bank exemplar's met inner lips lie on its real meeting line (the darkest row, within
    10 cut-out pixels, of each column under an inner-lip point): warped onto a closed smile, the
    exemplar's line lands where the target's lips meet. 061's dark lips, whose mesh put the line
    5 px above the real one (median; up to 10), drew a jagged dark crack across 042's closed smile;
    the bank's builder now leaves out a mesh that far off (`build_lip_bank.OFF_LINE`): every
    exemplar within 2 px."""
    b = lipbank.bank()
    off = {}
    for i, face_id in enumerate(b.ids):
        cut, pts = b.image(i), b.landmarks[i].astype(np.float64)
        grey = cv2.GaussianBlur(cut.astype(np.float32).mean(-1), (3, 3), 0)
        rows = []
        for x, y in np.round(pts[mouth._UPPER_INNER[1:-1]]).astype(int):
            rows.append(y - 10 + int(np.argmin(grey[y - 10:y + 11, x])) - y)
        off[str(face_id)] = float(np.median(np.abs(rows)))
    assert max(off.values()) <= 3, {k: v for k, v in off.items() if v > 3}


@needs_shared
@pytest.mark.parametrize("script, path", [("build_mouth_bank", mouthbank.BANK_PATH), ("build_lip_bank", lipbank.BANK_PATH)])
def test_the_mouth_and_lip_banks_rebuild_as_shipped(tmp_path, script, path):
    """scripts/build_mouth_bank.py and build_lip_bank.py, run as weights/README.md says, give the
    shipped banks, array for array. The mouth bank's script picked its smiles afresh from those that
    show teeth, and the teeth rule has changed since the bank was built: it would have swapped 12 of
    the 20 exemplars (and every painted mouth)."""
    from .conftest import load_script

    out = tmp_path / "bank.npz"
    load_script(script).main(["--out", str(out)])
    z, ref = np.load(out), np.load(path)
    assert sorted(z.files) == sorted(ref.files)
    for k in ref.files:
        assert np.array_equal(z[k], ref[k]), k


@pytest.mark.parametrize("person", ["001", "021", "005"])
def test_a_closed_mouth_smile_keeps_the_lips_together_and_still_reads_happy(person):
    """teeth=False: AU6 + AU12 without the recipe's AU25. The corners rise, the lips stay closed
    (no interior is painted), and the gate still accepts it."""
    rgb, faces = detect(london(person))
    open_, closed = (edit(rgb, "happy", 1.0, detections=faces, teeth=t).faces[0] for t in (True, False))
    m0, m1 = measures(closed.landmarks_before), measures(closed.landmarks_after)
    assert "AU25" not in closed.aus_applied and "AU25" in open_.aus_applied
    assert m1["lip_gap"] < 0.03 < measures(open_.landmarks_after)["lip_gap"]
    assert m1["corner_lift"] - m0["corner_lift"] > 0.05
    assert closed.verdict == "accepted"


def _across_folds(plane, lm, beside: float):
    """For each nasolabial fold of `lm`: `plane` (one value per pixel, smoothed 0.015 IOD) across
    a window 0.12 IOD wide along the fold's curve (13, n), and its mean `beside` IOD either side (n,)."""
    from pipeline.engines.geometric import shading

    p, iod = lm[:, :2].astype(np.float32), _iod(lm)
    ex = (p[263] - p[33]) / iod
    ey = np.array([-ex[1], ex[0]], np.float32)

    def v(a, b):
        return a * iod * ex + b * iod * ey

    plane = cv2.GaussianBlur(plane.astype(np.float32), (0, 0), 0.015 * iod)

    def at(q):
        return cv2.remap(plane, q[None, :, 0].astype(np.float32), q[None, :, 1].astype(np.float32), cv2.INTER_LINEAR)[0]

    for ala, corner in shading.NASOLABIAL.values():
        c = shading._nasolabial(p, ala, corner, v)[4:-4]
        yield (np.array([at(c + v(o, 0)) for o in np.linspace(-0.06, 0.06, 13)]),
               (at(c + v(-beside, 0)) + at(c + v(beside, 0))) / 2)


def _crease_depth(rgb, lm) -> float:
    """How much darker the nasolabial fold is than the cheek beside it (grey levels): along the
    fold's curve, the darkest point across a window 0.12 IOD wide vs the mean 0.12 IOD either side."""
    return float(np.mean([(beside - band.min(0)).mean() for band, beside in _across_folds(rgb.mean(-1), lm, 0.12)]))


def _fold_streak(rgb, lm) -> list[float]:
    """Per fold, how much more colourful (max - min channel) the most colourful point across it
    is than the cheek 0.15 IOD either side, at the worst place along it."""
    chroma = rgb.max(-1).astype(np.float32) - rgb.min(-1)
    return [float((band.max(0) - beside).max()) for band, beside in _across_folds(chroma, lm, 0.15)]


@pytest.mark.parametrize("scale", [1, 2])
def test_a_smile_taken_away_leaves_no_streak_beside_the_nose(scale):
    """The mean smile shading divided out of a smile is London's, under London's flat light. On a
    warm, side-lit smile (the astronaut photo, also at twice its size) it lifted skin that was
    not in shadow and kept a lifted shadow's colour: a bright orange streak along each fold,
    more colourful than the cheek by 19.6 / 12.8 levels (28.8 / 19.0 at 2x) where the photo's
    own folds are 13.6 / 5.0. A lift now stops at about the skin around it (12.1 / 4.3, 12.4 / 3.6)."""
    rgb, faces = detect(TEST_DATA / "astronaut.jpg")
    if scale != 1:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        faces = detect(rgb)[1]
    r = edit(rgb, "neutral", 1.0, detections=faces[:1], gate=False)
    assert r.faces[0].aus_removed.get("AU12", 0) > 1  # a broad smile was taken away
    before, after = _fold_streak(rgb, faces[0].landmarks), _fold_streak(r.image, r.faces[0].landmarks_after)
    assert all(a <= b + 1 for a, b in zip(after, before)), (before, after)


@pytest.mark.parametrize("index", [1, 4])
def test_a_smiles_shading_on_warm_graded_skin_deepens_its_colour(index, t1_path, monkeypatch):
    """t1.jpg is warm-graded: its skin's red sits at 220-230 whatever the brightness, and its own
    darker skin keeps red and loses blue. A smile's folds drawn with London's shares dropped R, G
    and B alike (face 1: -9.4 / -8.6 / -7.2 levels; face 4: -9.7 / -9.5 / -8.1) and kept the
    skin's saturation (HSV, +1.1 of 255): an ashen band from nose to mouth. Shaded as the photo's
    own skin shades, red now drops less than blue and the fold is deeper in colour (-1.5 / -8.4 /
    -12.7, saturation +13.7; -7.0 / -9.3 / -10.2, +5.2), against the same edit without the map."""
    from pipeline.engines.geometric import foldmap

    rgb, faces = detect(t1_path)
    face = sorted(faces, key=lambda f: f.box[0])[index]
    x0, y0, x1, y1 = [max(int(v), 0) for v in face.box]

    def happy():
        return edit(rgb, "happy", 1.0, detections=[face], gate=False).image[y0:y1, x0:x1].astype(np.float32)

    shaded = happy()
    monkeypatch.setattr(foldmap, "render", lambda *a, **k: None)
    plain = happy()
    fold = (plain - shaded).mean(-1) > 3  # where the smile's shading darkens the skin
    assert fold.sum() > 200, fold.sum()
    drop = (plain - shaded)[fold].mean(0)

    def sat(img):
        return float(cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_RGB2HSV)[..., 1][fold].mean())

    assert drop[0] < 0.8 * drop[2] and sat(shaded) > sat(plain) + 3, (drop, sat(plain), sat(shaded))


@pytest.mark.parametrize("person", ["021", "064"])
def test_a_smile_taken_away_takes_its_own_folds_with_it(person):
    """Real smiles -> neutral kept the person's own nasolabial folds (the measured mean smile
    shading that is divided out is everyone's average): 064's fold stayed 10.6 grey levels deep
    (14.1 in the smile, -3.8 in the person's own neutral photo), 021's 4.1 (6.8). They are now
    flattened from the skin around them; a sad target keeps them (AU11 deepens them in sadness)."""
    rgb, lm_src, lm, out = _edit(person, "happy", "neutral")
    before, after = _crease_depth(rgb, lm_src), _crease_depth(out, lm)
    assert before > 5 and after < 0.3 * before, (before, after)
    _, _, lm_sad, sad = _edit(person, "happy", "sad")
    assert _crease_depth(sad, lm_sad) > after + 3, (_crease_depth(sad, lm_sad), after)


def test_flattening_folds_touches_only_the_cheeks_beside_the_mouth():
    """The flattening changes pixels only in its band, never the lips, and reports what it touched."""
    from pipeline.engines.geometric import shading

    rgb, face = _photo("064", "happy")
    lm = face.landmarks
    region = warp.region_for(lm, rgb.shape[:2])
    sub = rgb[region.slices].copy()
    touched = shading.flatten_smile_folds(sub, lm, region, _iod(lm), 1.0)
    assert touched is not None and touched.any()
    assert (sub[~touched] == rgb[region.slices][~touched]).all()
    lips = cv2.erode(_poly_mask(rgb.shape[:2], lm[LIPS_OUTER]).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert (sub[lips[region.slices]] == rgb[region.slices][lips[region.slices]]).all()
    ys, _ = np.nonzero(touched)
    assert ys.min() + region.y0 > lm[6, 1]  # below the eyes' level: the lower face only


def _under_eye_lines(rgb, lm) -> float:
    """Mean ink of thin dark lines (black top-hat 0.06 IOD across, grey levels) in a band from
    0.05 to 0.2 IOD under each lower lid: a Duchenne smile's creases."""
    p, iod = lm[:, :2], _iod(lm)
    k = max(3, int(round(0.06 * iod)) | 1)
    hat = cv2.morphologyEx(rgb.astype(np.float32).mean(-1), cv2.MORPH_BLACKHAT,
                           cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    ex = (p[263] - p[33]) / iod
    down = np.array([-ex[1], ex[0]])
    band = np.zeros(rgb.shape[:2], np.uint8)
    for lo in (LID_LO_L, LID_LO_R):
        cv2.fillPoly(band, [np.round(np.concatenate([p[lo] + 0.05 * iod * down, (p[lo] + 0.2 * iod * down)[::-1]]))
                            .astype(np.int32)], 1)
    return float(hat[band > 0].mean())


def test_a_smile_taken_away_takes_its_creases_under_the_eyes_with_it():
    """013's broad smile creased the skin under her eyes (line ink 8.4 against 4.3 in her own
    neutral photo); relaxed to neutral, the lids opened but the creases stayed (7.3) and kept the
    squint. The deep lines are now filled: within 1.5 of her neutral photo's."""
    rgb, lm_src, lm, out = _edit("013", "happy", "neutral")
    own_rgb, own_face = _photo("013", "neutral")
    own, before, after = _under_eye_lines(own_rgb, own_face.landmarks), _under_eye_lines(rgb, lm_src), _under_eye_lines(out, lm)
    assert before > own + 3 and abs(after - own) < 1.5, (own, before, after)


def test_filling_squint_lines_spares_the_eyes():
    """The fill changes pixels only under and beside the eyes, never the eye, its lashes or the
    lid's rim, and reports what it touched."""
    from pipeline.engines.geometric import shading

    rgb, face = _photo("013", "happy")
    lm = face.landmarks
    region = warp.region_for(lm, rgb.shape[:2])
    sub = rgb[region.slices].copy()
    touched = shading.fill_squint_lines(sub, lm, region, _iod(lm) * 0.69, 1.0)
    assert touched is not None and touched.any()
    assert (sub[~touched] == rgb[region.slices][~touched]).all()
    for eye in (EYE_L, EYE_R):
        m = _poly_mask(rgb.shape[:2], lm[eye])[region.slices]
        assert (sub[m] == rgb[region.slices][m]).all()
    ys, _ = np.nonzero(touched)
    assert ys.max() + region.y0 < lm[2, 1]  # above the nose's base: round the eyes only


def _band(shape, lm):
    """The nasolabial curves' band (0.15 of the pose scale wide) of a face with landmarks `lm`."""
    from pipeline.engines.geometric import shading

    iod = _iod(lm) * 0.69  # the pose scale the engine draws in
    p = lm[:, :2].astype(np.float32)
    _, _, v = shading._axes(p, iod)
    band = np.zeros(shape, np.uint8)
    for ala, corner in shading.NASOLABIAL.values():
        cv2.polylines(band, [np.round(shading._nasolabial(p, ala, corner, v)).astype(np.int32)], False, 1,
                      int(0.15 * iod))
    return band > 0, iod


def _hat(img, iod):
    """Black top-hat 0.06 of the pose scale across: how much darker each pixel is than a closing."""
    k = int(0.06 * iod) | 1
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.morphologyEx(g, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def test_a_smile_taken_away_takes_its_thin_creases_too(monkeypatch):
    """The flattening replaces shading, coarser than a crease: 064's folds stayed as thin dark
    lines. Where they are deep (darker than 8 levels against a closing, in the band) 6.8 of their
    15.5 levels are left now, and the fine texture off them stays."""
    from pipeline.engines.geometric import shading

    _, _, lm, out = _edit("064", "happy", "neutral")
    monkeypatch.setattr(shading, "CREASE_DEEP", 1e9)  # nothing is deep enough to fill
    _, _, lm0, kept = _edit("064", "happy", "neutral")
    band, iod = _band(out.shape[:2], lm)
    hat, hat0 = _hat(out, iod), _hat(kept, iod)
    creases = band & (hat0 > 8)
    assert creases.sum() > 100
    assert hat[creases].mean() < 0.5 * hat0[creases].mean(), (hat[creases].mean(), hat0[creases].mean())
    fine = lambda im: np.abs(im.astype(np.float32).mean(-1) - cv2.GaussianBlur(im.astype(np.float32).mean(-1), (0, 0), 1.0))
    skin = band & (hat0 < 2)
    assert fine(out)[skin].mean() > 0.9 * fine(kept)[skin].mean()


def test_creases_are_filled_as_lines_and_moles_stay():
    """crease_fill fills a thin line, not a mole or the skin's grain: on skin with 2-level grain, a
    2 px crease 25 levels dark keeps 4.5 of them, a 3 px-radius mole 67 levels dark keeps all."""
    from pipeline.engines.geometric import shading

    rng = np.random.default_rng(0)
    img = np.full((200, 200, 3), (190, 150, 130), np.float32) + rng.normal(0, 2.0, (200, 200, 1)).astype(np.float32)
    crease = np.array([[40, 30], [60, 90], [70, 170]], np.int32)
    cv2.polylines(img, [crease], False, (165, 125, 105), 2, cv2.LINE_AA)
    cv2.circle(img, (150, 100), 3, (120, 80, 70), -1, cv2.LINE_AA)
    out = img + shading.crease_fill(img, 110.0)
    line, mole = np.zeros((200, 200), np.uint8), np.zeros((200, 200), np.uint8)
    cv2.polylines(line, [crease], False, 1, 1)
    cv2.circle(mole, (150, 100), 2, 1, -1)
    dark = lambda im, m: float(np.median(im.mean(-1)) - im.mean(-1)[m > 0].mean())
    assert dark(out, line) < 0.3 * dark(img, line)
    assert dark(out, mole) > 0.95 * dark(img, mole)
    rest = np.ones((200, 200), bool)
    rest[:, :100] = False
    rest[80:120, 130:170] = False
    assert abs(out.mean(-1)[rest].std() - img.mean(-1)[rest].std()) < 0.05


def _rim_ink(out, lm):
    """Dark thin lines (a black top-hat 0.03 of the mouth's width across, levels above 6) per pixel
    of the ring 0.06 of the mouth's width round the opening of `out`."""
    inside = _poly_mask(out.shape[:2], lm[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1]]).astype(np.uint8)
    w = float(np.hypot(*(lm[291, :2] - lm[61, :2])))
    r = max(1, round(0.06 * w))
    ring = (cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            - cv2.dilate(inside, np.ones((3, 3), np.uint8)))
    g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float32)
    k = max(3, round(0.03 * w)) | 1
    hat = cv2.morphologyEx(g, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return float((hat * (hat > 6))[ring > 0].sum() / ring.sum())


@pytest.mark.parametrize("person", ["005", "025"])
@pytest.mark.parametrize("emotion", ["surprised", "fearful"])
def test_an_opened_mouth_has_no_dark_outline(person, emotion, monkeypatch):
    """The closed lips' dark meeting line, stretched by the warp along the edge of a wide opening,
    drew an outline round the hole (a stitch along the lower lip). It is filled in a ring outside
    the opening: 005 0.69 -> 0.06 (surprise), 0.66 -> 0.12 (fear); 025 0.81 -> 0.04, 1.68 -> 0.56."""
    _, _, lm, out = _edit(person, "neutral", emotion)
    monkeypatch.setattr(mouth, "RIM_FILL", 0.0)
    _, _, lm0, out0 = _edit(person, "neutral", emotion)
    assert _rim_ink(out, lm) < 0.4 * _rim_ink(out0, lm0), (_rim_ink(out, lm), _rim_ink(out0, lm0))


@pytest.mark.parametrize("face_id,kind,emotion", [
    ("001", "happy", "sad"), ("021", "happy", "happy"), ("025", "happy", "disgusted"),
    ("025", "happy", "surprised"), ("064", "neutral", "angry")])
def test_no_pixel_is_sampled_from_far_away(face_id, kind, emotion):
    """A node that the raster gives to a sliver of a squeezed triangle took that triangle's affine
    far outside it: single white or dark pixels beside a mouth corner or on a lid (081 happy: a
    white pixel taken from 360 px away). These cases sampled 7x to 46x as far as the furthest
    landmark moved (tune half, old map: up to 50x); now at most 1.31x anywhere there."""
    rgb, face = _photo(face_id, kind)
    src = face.landmarks
    target = plan(src, emotion, 1.0).target
    region = warp.region_for(src, rgb.shape[:2])
    mapping, _ = warp.backward_map(src, target, region)
    gy, gx = np.mgrid[region.y0:region.y1, region.x0:region.x1]
    reach = np.hypot(mapping[..., 0] - gx, mapping[..., 1] - gy)
    furthest = float(np.hypot(*(target[:, :2] - src[:, :2]).T).max())
    assert reach.max() <= 1.5 * furthest, (reach.max(), furthest)


@pytest.mark.parametrize("emotion", ["neutral", "sad"])
def test_full_closed_lips_are_not_squeezed(emotion):
    """025's closed full lips: the landmarker puts their inner edges 0.066 IOD apart on the lips'
    own red, and the planner "closed" that false gap, squeezing the lips to 0.80 (neutral) and 0.76
    (sad) of their height. Closed lips (no teeth, no dark opening) are now read as meeting."""
    rgb, face = _photo("025", "neutral")
    lm = face.landmarks
    r = edit(rgb, emotion, 1.0, detections=[face], gate=False)
    after = r.faces[0].landmarks_after
    assert after[17, 1] - after[0, 1] >= 0.95 * (lm[17, 1] - lm[0, 1])
    assert mouth.meet_closed_lips(rgb, lm) is not lm  # the false gap is seen ...
    rgb1, face1 = _photo("001", "happy")  # ... and lips that show teeth are left as they are
    assert mouth.meet_closed_lips(rgb1, face1.landmarks) is face1.landmarks


def test_a_smirk_from_a_broad_smile_closes_over_the_teeth():
    """Contempt parts no lip, but its raised corner left 025's broad smile 0.042 IOD apart, just
    past where an opening counts as closed: the teeth stayed between the lips as a white dashed
    line (530 enamel-like pixels inside the lips). A target that parts no lip closes up to twice
    that gap: as few are left as when the smile is taken away altogether (124 and 126)."""
    rgb, face = _photo("025", "happy")
    counts = {}
    for emotion in ("contempt", "neutral"):
        r = edit(rgb, emotion, 1.0, detections=[face], gate=False)
        after = r.faces[0].landmarks_after
        assert not mouth.teeth_showing(r.image, after), emotion
        counts[emotion] = mouth._enamel(r.image[_poly_mask(rgb.shape[:2], after[LIPS_OUTER])], rgb, face.landmarks).sum()
    assert counts["contempt"] < 1.5 * counts["neutral"], counts


def test_teeth_in_a_dim_photo_are_as_bright_as_real_teeth_are_against_the_eye_whites():
    """lisa2.jpg is a dim selfie of light skin (skin grey 69, eye whites 42): scaled by the skin
    alone it took a darker-skinned, studio-lit exemplar at that exemplar's brightness, and the
    teeth glowed at 3.4 times the eye whites (real London smiles: 1.09-1.90 times the eye whites of
    the same person's neutral photo). They are kept in that range now."""
    from pathlib import Path

    rgb, faces = detect(Path(__file__).parent / "data" / "lisa" / "lisa2.jpg")
    r = edit(rgb, "happy", 1.0, detections=faces, gate=False)
    after = r.faces[0].landmarks_after
    inside = _inner_mouth(rgb.shape[:2], after)
    teeth = np.percentile(r.image[inside].astype(np.float32).mean(-1), 90)
    sclera = mouth._sclera(rgb, faces[0].landmarks)
    assert 1.0 * sclera <= teeth <= 2.0 * sclera, (teeth, sclera)


def test_a_smile_parted_on_a_dark_slit_closes_onto_its_own_lips(monkeypatch):
    """122 smiles with closed teeth hidden and a dark slit between the lips, lip beside it; taken
    away by the warp alone the slit became a thick, jagged dark band between the lips (488 pixels
    darker than 0.6 of the lips inside them). It closes onto the person's own lips now (15), and
    the inpainting stays near the slit: the lips' own edges are kept."""
    rgb, face = _photo("122", "happy")
    lips = mouth._lip_colour(rgb, face.landmarks).mean()

    def dark(r):
        after = r.faces[0].landmarks_after
        inside = _poly_mask(rgb.shape[:2], after[LIPS_OUTER])
        return int((r.image.astype(np.float32).mean(-1)[inside] < 0.6 * lips).sum())

    closed = edit(rgb, "neutral", 1.0, detections=[face], gate=False)
    monkeypatch.setattr(mouth, "smile_parting", lambda *a: None)  # as before: the warp alone
    warped = edit(rgb, "neutral", 1.0, detections=[face], gate=False)
    assert dark(closed) < 0.1 * dark(warped), (dark(closed), dark(warped))
    # Only the lips' middle band was inpainted: their outline above and below is the warp's.
    after = closed.faces[0].landmarks_after
    top = np.round(after[[0, 37, 267], :2]).astype(int)
    assert np.abs(closed.image[top[:, 1], top[:, 0]].astype(int) - warped.image[top[:, 1], top[:, 0]]).max() <= 2


@pytest.mark.parametrize("person", ["001", "021", "064"])
def test_softness_reads_how_blurred_the_photo_is(person):
    """`shading.softness`: a sharp London portrait reads (almost) no extra blur; the same photo
    blurred by 1 px reads about 1 px, by 2 px more (001: 0, 0.93, 2.0)."""
    from pipeline.engines.geometric import shading

    rgb, face = _photo(person, "neutral")
    region = warp.region_for(face.landmarks, rgb.shape[:2])
    soft = [shading.softness((cv2.GaussianBlur(rgb, (0, 0), s) if s else rgb)[region.slices], face.landmarks, region)
            for s in (0, 1.0, 2.0)]
    assert soft[0] < 0.3 and 0.6 < soft[1] < 1.4 and soft[2] > soft[1] + 0.3, soft


def test_drawn_folds_are_no_sharper_than_the_photo(t1_path, monkeypatch):
    """t1.jpg's faces are small and soft (softness 0.8-1.2 px); sadness's forehead lines drawn at a
    sharp portrait's blur were crisper than anything else in the photo, pencil lines. On the middle
    man's forehead (his eyes left out) they add fine detail (|pixel - 1 px blur|) to the warped
    face's; drawn as soft as the photo, less than half as much."""
    from pipeline.engines.geometric import shading

    rgb, faces = detect(t1_path)
    face = sorted(faces, key=lambda f: f.box[0])[2]
    pts = face.landmarks[[10, 67, 297, 109, 338, 151, 9, 66, 296, 105, 334], :2]
    (x0, y0), (x1, y1) = np.floor(pts.min(0)).astype(int), np.ceil(pts.max(0)).astype(int)
    # The forehead only: the head is tilted, and one eye's lid reaches into the box.
    eyes = cv2.dilate((_poly_mask(rgb.shape[:2], face.landmarks[EYE_L]) | _poly_mask(rgb.shape[:2], face.landmarks[EYE_R]))
                      .astype(np.uint8), np.ones((7, 7), np.uint8))[y0:y1, x0:x1] == 0

    def fine(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)[y0:y1, x0:x1]
        return float(np.abs(g - cv2.GaussianBlur(g, (0, 0), 1.0))[eyes].mean())

    def sad():
        return fine(edit(rgb, "sad", 1.0, detections=[face], gate=False).image)

    with monkeypatch.context() as m:  # the warp alone: what the lines add is measured against it
        m.setattr(shading, "render", lambda *a, **k: None)
        warped = sad()
    soft = sad() - warped
    monkeypatch.setattr(shading, "softness", lambda *a: 0.0)
    sharp = sad() - warped
    assert sharp > 0.1 and soft < 0.5 * sharp, (soft, sharp)


def test_teeth_in_warm_light_are_seen_and_closed(t1_path):
    """insightface's t1.jpg (warm, saturated, small faces): the two laughing faces' teeth are as
    orange as the skin, so the grey-enamel rule missed them and a smile taken away left teeth
    fragments between the lips. Enamel is now also what is as bright as the skin and far less
    saturated than the lips: both are seen (and no other face of the photo), and closed."""
    rgb, faces = detect(t1_path)
    faces = sorted(faces, key=lambda f: f.box[0])
    seen = [bool(mouth.teeth_showing(rgb, f.landmarks)) for f in faces]
    assert seen == [False, False, False, True, False, True], seen
    out = edit(rgb, "neutral", 1.0, detections=faces, gate=False)
    for f, fe in zip(faces, out.faces):
        if mouth.teeth_showing(rgb, f.landmarks):
            assert not mouth.teeth_showing(out.image, fe.landmarks_after)
            # enamel-like pixels inside the lips: 50 and 74 before; the faces without teeth show
            # about 5 (lip highlights)
            before = mouth._enamel(rgb[_poly_mask(rgb.shape[:2], f.landmarks[LIPS_OUTER])], rgb, f.landmarks).sum()
            after = mouth._enamel(out.image[_poly_mask(rgb.shape[:2], fe.landmarks_after[LIPS_OUTER])], rgb,
                                  f.landmarks).sum()
            assert before > 40 and after <= 0.3 * before, (before, after)


def _lip_triangle_areas(lm: np.ndarray) -> np.ndarray:
    """Signed areas of the mesh triangles made of lip points only."""
    from pipeline.engines.geometric.expression import model, triangle_areas

    lip = set(LIPS_UPPER_RINGS + LIPS_LOWER_RINGS + LIP_CORNERS)
    tri = model().tri_mesh
    return triangle_areas(lm.astype(np.float64), tri[[set(k) <= lip for k in tri]])


@pytest.mark.parametrize("face_id", ["001", "005", "025"])
def test_pressed_lips_do_not_fold_over(face_id):
    """Anger's lip press (AU23/24) pulled the lips towards the line between them once for each side
    of the face: the inner rings moved 1.44x their distance from the line, past it, and 35-44 of the
    lips' triangles flipped (38, 35, 13 on these three): the upper lip vanished into a stair-stepped
    line. Now the press moves the nearest points 0.94 of the way; 1-2 flip (slivers at the corners,
    which flip without any press too)."""
    rgb, face = _photo(face_id, "neutral")
    src = mouth.meet_closed_lips(rgb, face.landmarks)
    before = _lip_triangle_areas(src)
    after = _lip_triangle_areas(plan(src, "angry", 1.0).target)
    real = np.abs(before) > 1
    assert ((before * after < 0) & real).sum() <= 2


def _line_offset(rgb: np.ndarray, lm: np.ndarray) -> float:
    """Median distance (px) from the landmarks' meeting line of closed lips to the darkest row near
    it (within 0.06 IOD), over the middle of the mouth."""
    mid = (lm[mouth._UPPER_INNER, :2] + lm[mouth._LOWER_INNER, :2]).astype(np.float64) / 2
    xs = np.arange(int(mid[2, 0]), int(mid[-3, 0]))
    ys = np.interp(xs, mid[:, 0], mid[:, 1])
    grey = cv2.GaussianBlur(rgb.astype(np.float32).mean(-1), (0, 0), 0.8)
    k = int(round(0.06 * _iod(lm)))
    rows = np.round(ys).astype(int)[None] + np.arange(-k, k + 1)[:, None]
    dark = rows[grey[rows, xs[None]].argmin(0), np.arange(len(xs))]
    return float(np.median(np.abs(dark - ys)))


@pytest.mark.parametrize("face_id", ["021", "025"])
def test_closed_lips_are_warped_from_their_real_meeting_line(face_id):
    """The mesh puts closed lips' meeting line a few pixels off the dark line where they meet (021
    2.0 px, 025 2.8 px, London's 107 and 139 3.0 and 3.4; lisa's close-up up to 7): squeezed
    (anger), the real line showed in the other lip as dark stair-steps. `on_meeting_line` moves the
    inner edges onto it (021 0.3 px, 025 0.6 px), the lips' rings in proportion, the outer contour
    not at all; lips that show teeth are left as they are. Carried into the target with the lip's
    ring gaps there (the first carry, scaled by the lip's thickness alone, flipped 3 of 021's
    pressed-lip triangles that the plan keeps)."""
    rgb, face = _photo(face_id, "neutral")
    src = mouth.meet_closed_lips(rgb, face.landmarks)
    moved = mouth.on_meeting_line(rgb, src)
    before, after = _line_offset(rgb, src), _line_offset(rgb, moved)
    assert before > 1.5 and after < 0.4 * before, (before, after)
    assert np.array_equal(moved[LIPS_OUTER], src[LIPS_OUTER])
    real = np.abs(_lip_triangle_areas(src)) > 1

    def flips(a, b):
        return int(((_lip_triangle_areas(a) * _lip_triangle_areas(b) < 0) & real).sum())

    # carried into anger's pressed lips, the move folds nothing the plan does not
    planned = plan(src, "angry", 1.0).target
    carried = mouth.carry_line(src, moved, planned)
    assert flips(src, moved) == 0 and flips(moved, carried) <= flips(src, planned)
    rgb1, face1 = _photo("025", "happy")  # a broad smile, teeth between the lips
    assert mouth.on_meeting_line(rgb1, face1.landmarks) is face1.landmarks


def _lower_lip_error(lm, tem) -> float:
    """Mean distance (IOD, vertical) from the hand-placed lower-lip outline (template points 104-108)
    to the landmarks' lower outer lip contour, corner to corner."""
    ring = lm[[61] + LIPS_LOWER_RINGS[:9] + [291], :2]
    return float(np.mean([abs(tem[k][1] - np.interp(tem[k][0], ring[:, 0], ring[:, 1]))
                          for k in (104, 105, 106, 107, 108)])) / _iod(lm)


def _lower_lip_errors(ids):
    """(before, after) `_lower_lip_error` of each neutral photo of `ids` (meet_closed_lips first, as
    the engine does), before and after `on_lip_edge`."""
    out = []
    for face_id in ids:
        rgb, face = _photo(face_id, "neutral")
        src = mouth.meet_closed_lips(rgb, face.landmarks)
        p = london(face_id, "neutral").with_suffix(".tem")
        tem = read_tem(p if p.exists() else SHARED_FACES / "london" / p.name)
        out.append((_lower_lip_error(src, tem), _lower_lip_error(mouth.on_lip_edge(rgb, src), tem)))
    return np.array(out)


def test_lower_lip_is_warped_from_its_real_outer_edge():
    """The mesh puts the lower lip's outer edge inside the lip more often than not, so a press or a
    closing left the red below it as chin (a thick pout). `on_lip_edge` moves the outer contour
    onto the edge where the lip's red gives way to skin: against the hand-placed outlines of the
    five test people the error falls (mean 0.0163 -> 0.0141 IOD; 001 0.022 -> 0.012), the lip's
    inner edge and corners stay, and the move carries into a target unchanged."""
    err = _lower_lip_errors(["001", "005", "021", "025", "064"])
    assert err[:, 1].mean() < 0.9 * err[:, 0].mean(), err
    assert err[0, 1] < 0.6 * err[0, 0], err  # 001: the mesh's edge 0.022 IOD inside the lip
    rgb, face = _photo("001", "neutral")
    src = mouth.meet_closed_lips(rgb, face.landmarks)
    edged = mouth.on_lip_edge(rgb, src)
    lower = LOWER_RINGS
    still = [i for i in range(len(src)) if i not in set(lower[:3].ravel())]
    assert np.array_equal(edged[still], src[still])  # inner edge, corners, everything else
    moved = np.hypot(*(edged - src)[lower[0], :2].T) / _iod(src)
    assert 0.01 < moved.max() <= mouth.EDGE_MOVE + 1e-6, moved
    planned = plan(src, "angry", 1.0).target
    carried = mouth.carry_edge(src, edged, planned)
    assert np.allclose(carried - planned, edged - src, atol=1e-3)


@needs_shared
def test_lower_lip_edge_on_the_tune_half():
    """Over the tune half's 34 neutral photos (where EDGE_* were chosen) the lower-lip outline's
    error falls by more than a quarter (0.0203 -> 0.0145 IOD; the report half, checked once: 0.0176
    -> 0.0130); 061's dark lips on dark skin show too faint an edge and are left where the mesh put
    them."""
    err = _lower_lip_errors(london_split("tune"))
    assert err[:, 1].mean() < 0.75 * err[:, 0].mean(), err.mean(0)
    rgb, face = _photo("061", "neutral")
    src = mouth.meet_closed_lips(rgb, face.landmarks)
    assert mouth.on_lip_edge(rgb, src) is src


def _red_heights(img, lm, us=(0.08, 0.12)) -> np.ndarray:
    """How tall the lips' red is (IOD) across the mouth at each fraction `us` of its width from
    either corner (both sides averaged): the samples within +-0.2 IOD of the corner-to-corner line
    whose CIELAB a* is past the midpoint of the lips' and the skin's."""
    p = lm[:, :2].astype(np.float64)
    iod = _iod(p)
    a, d = p[61], p[291] - p[61]
    w = float(np.hypot(*d))
    e = d / w
    n = np.array([-e[1], e[0]])
    red = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)[..., 1].astype(np.float32)
    at = lambda q: float(red[int(q[1]), int(q[0])])  # noqa: E731
    lip = np.median([at(p[k]) for k in (0, 17, 37, 267, 84, 314)])
    skin = np.median([at(q) for q in (p[61] - 0.12 * iod * e, p[291] + 0.12 * iod * e, p[164])])
    ts = np.arange(-0.2, 0.2001, 0.005) * iod
    out = []
    for u in us:
        for c in (a + u * w * e, a + (1 - u) * w * e):
            pts = (c[None] + ts[:, None] * n[None]).astype(np.float32)
            v = cv2.remap(red, pts[None, :, 0], pts[None, :, 1], cv2.INTER_LINEAR)[0]
            out.append((v > (lip + skin) / 2).sum() * 0.005)
    return np.array(out).reshape(len(us), 2).mean(1)


@needs_shared
def test_a_closed_smile_tapers_into_its_corners():
    """The 13 real smiles with teeth of the tune half closed to neutral: their lips' red near the
    corners is about as tall as in the same people's real neutral photos (within 15% at 8% and
    12% of the width from each corner, over the 13 people: 1.01x / 1.12x), where it ended in a
    blunt block before the corners were tapered (`mouth.taper_corners`): 1.04x / 1.27x. (Medians
    jumped with one face: 1.67x / 1.52x before the taper, 1.06x / 1.13x after it, 1.06x / 1.39x
    once a glossy lip stopped being taken for teeth, 083's red moving 0.088 -> 0.108 IOD against
    its own neutral photo's 0.090.)"""
    real, closed = [], []
    for face_id in london_split("tune"):
        rgb, face = _photo(face_id, "happy")
        if not mouth.teeth_showing(rgb, mouth.meet_closed_lips(rgb, face.landmarks)):
            continue
        with mouthbank.leaving_out(face_id):
            _, _, dst, out = _edit(face_id, "happy", "neutral")
        closed.append(_red_heights(out, dst))
        rgb0, face0 = _photo(face_id, "neutral")
        real.append(_red_heights(rgb0, face0.landmarks))
    assert len(closed) >= 10
    ratio = np.mean(closed, 0) / np.mean(real, 0)
    assert (np.abs(ratio - 1) < 0.15).all(), ratio


def test_squeezed_lips_are_sampled_with_several_samples_a_pixel():
    """Anger presses the lips: the map squeezes several source pixels into one, and one bilinear
    sample a pixel turned the dark line between the lips into a dashed one. Where the map squeezes,
    the lips' box is re-sampled with up to 4 x 4 samples a pixel: against a 6 x 6 supersampled
    reference it is far closer than single samples are (in the lips box, where it acts)."""
    rgb, face = _photo("001", "neutral")
    src = face.landmarks
    target = plan(src, "angry", 1.0).target
    region = warp.region_for(src, rgb.shape[:2])
    mapping, _ = warp.backward_map(src, target, region)
    plain = warp.remap(rgb, mapping)
    pts = np.concatenate([src[LIPS_OUTER, :2], target[LIPS_OUTER, :2]])
    aa = plain.copy()
    warp.antialias_squeezed(aa, rgb, mapping, region, pts, 0.05 * _iod(src))
    # the reference: 6 x 6 samples a pixel everywhere in the region
    h, w = mapping.shape[:2]
    ref = cv2.resize(warp.remap(rgb, cv2.resize(mapping, (w * 6, h * 6), interpolation=cv2.INTER_LINEAR)), (w, h),
                     interpolation=cv2.INTER_AREA).astype(np.float32)
    gy, gx = np.gradient(mapping, axis=(0, 1))
    squeezed = np.maximum(np.hypot(gx[..., 0], gx[..., 1]), np.hypot(gy[..., 0], gy[..., 1])) > warp.SQUEEZE_AA[1]
    lips = np.zeros_like(squeezed)  # the box the lips' re-sampling covers (the lids squeeze too)
    x0, y0 = np.floor(pts.min(0) - 0.05 * _iod(src)).astype(int) - [region.x0, region.y0]
    x1, y1 = np.ceil(pts.max(0) + 0.05 * _iod(src)).astype(int) - [region.x0, region.y0]
    lips[y0:y1, x0:x1] = True
    squeezed &= lips
    assert squeezed.sum() > 100
    err_plain = np.abs(plain.astype(np.float32) - ref)[squeezed].mean()
    err_aa = np.abs(aa.astype(np.float32) - ref)[squeezed].mean()
    assert err_aa < 0.3 * err_plain, (err_aa, err_plain)  # 001 angry: 0.26 vs 4.59 grey levels


def _teeth_under_the_lip(rgb, src, dst, out) -> tuple[float, float, float]:
    """Over the middle half of the opening: the share of columns with enamel, and the median
    enamel height below the upper inner lip and gap left above the lower one (IOD)."""
    iod = _iod(src)
    inside = _inner_mouth(out.shape[:2], dst)
    enamel = mouth._enamel(out, rgb, src) & inside
    x0, x1 = dst[78, 0], dst[308, 0]
    xs = np.arange(int(x0 + 0.25 * (x1 - x0)), int(x1 - 0.25 * (x1 - x0)))
    lowest = np.where(enamel[:, xs], np.arange(out.shape[0])[:, None], -1).max(0)
    seen = lowest >= 0
    if not seen.any():
        return 0.0, 0.0, 0.0
    up = np.interp(xs, *zip(*sorted(dst[LIPS_INNER_UPPER, :2].tolist())))
    lo = np.interp(xs, *zip(*sorted(dst[LIPS_INNER_LOWER, :2].tolist())))
    return (float(seen.mean()), float(np.median(lowest[seen] - up[seen])) / iod,
            float(np.median(lo[seen] - lowest[seen])) / iod)


@pytest.mark.parametrize("face_id", ["001", "005", "021", "025", "064"])
def test_disgust_bares_a_row_of_teeth_not_a_stroke(face_id):
    """Disgust's raised upper lip uncovers the upper teeth where the skull holds them: a row whose
    edge lies near the closed lips' line, with the dark of the parted lips below it. Laid out from
    the upper lip, it was a white stroke bent with the lip's bow, 0.014-0.019 IOD tall on these
    photos (now 0.026-0.059; 025's mesh closed its lips too high, and showed no teeth at all)."""
    shown, height, below = _teeth_under_the_lip(*_edit(face_id, "neutral", "disgusted"))
    assert shown > 0.5, shown
    assert height > 0.022, height
    assert below > 0.015, below  # not a grin: the teeth do not fill the opening


@pytest.mark.parametrize("face_id", ["001", "064"])
def test_disgusts_furrow_ends_beside_the_mouth_corner(face_id):
    """AU9/AU10 deepen the nasolabial furrow from the nose wing down to beside the mouth corner;
    drawn as long as a smile's, it ran on below the corners beside the chin like a pair of
    brackets. The shading stage's darkening beside the upper lip (0.1 IOD above the corner's
    level: 0.86 on these photos, before and after) stays; 0.05 IOD below the corner's level it
    was 0.91-0.93 and is none now."""
    rgb, face = _photo(face_id, "neutral")
    g = _shading_gain(rgb, face, "disgusted")
    p = plan(face.landmarks, "disgusted", 1.0).target[:, :2]
    iod = _iod(face.landmarks)
    for corner in (61, 291):
        out = np.sign(p[corner, 0] - p[1, 0])
        # a band beside the corner, out to where the old furrow ran
        x0, x1 = sorted((p[corner, 0], p[corner, 0] + out * 0.3 * iod))
        darkest = {}
        for name, dy in (("above", -0.1), ("below", 0.05)):
            y = int(round(p[corner, 1] + dy * iod))
            darkest[name] = float(g[y - 2:y + 3, int(x0):int(x1) + 1].min())
        assert darkest["above"] < 0.9, darkest
        assert darkest["below"] > 0.97, darkest


@pytest.mark.parametrize("face_id", ["025", "064"])
def test_closed_smile_corners_keep_the_lips_grain(face_id):
    """Where a closed smile's corners are inpainted (beyond the bank lips), the lips' grain goes
    back in: smooth, they read as flat grey patches beside textured lips (013). Fine detail
    (median |high-pass|) by the meeting line in the corners, against the photo's own lips: 0.43 and
    0.33 before on these photos, 0.55 and 0.52 now."""
    rgb, src, dst, out = _edit(face_id, "happy", "neutral")
    iod = _iod(src)

    def fine(img):
        lum = img.astype(np.float32).mean(-1)
        return np.abs(lum - cv2.blur(lum, (3, 3)))

    f, s, t = _mouth_coords(out.shape[:2], dst)
    u = s / f.width
    near_line = np.abs(t - f.t_up(s)) < 0.03 * iod
    corners = _poly_mask(out.shape[:2], dst[LIPS_OUTER]) & ((u < 0.12) | (u > 0.88)) & (u > 0) & (u < 1) & near_line
    assert corners.sum() > 100
    ratio = float(np.median(fine(out)[corners])) / float(np.median(fine(rgb)[_poly_mask(rgb.shape[:2], src[LIPS_OUTER])]))
    assert ratio > 0.48, ratio


def test_a_parted_smile_with_shadowed_teeth_closes_onto_lips():
    """021's smile parts its lips over teeth in deep shadow, neither enamel-like nor dark: taken to
    neutral, it was closed by the warp alone and its teeth stayed as fragments and dark gaps
    between the lips. A smile taken away from parted lips with no lip between them is closed like
    one with teeth. Along the meeting line (middle 70%, 0.02 IOD either side): dark gaps (< 0.6 of
    the lips) 8% -> 0%, fine detail 0.076 -> 0.057 of the lips' brightness."""
    rgb, src, dst, out = _edit("021", "happy", "neutral")
    assert not mouth.teeth_showing(rgb, src) and not mouth.lip_between(rgb, src)
    iod = _iod(src)
    f, s, t = _mouth_coords(out.shape[:2], dst)
    u = s / f.width
    line = (np.abs(t - f.t_up(s)) < 0.02 * iod) & (u > 0.15) & (u < 0.85)
    lum = out.astype(np.float32).mean(-1)
    lips = float(mouth._lip_colour(rgb, src).mean())
    assert (lum[line] < 0.6 * lips).mean() < 0.03
    detail = np.abs(lum - cv2.GaussianBlur(lum, (0, 0), 2))
    assert float(np.median(detail[line])) / lips < 0.065


def _map_outliers(src, dst, rgb) -> int:
    """Pixels of the warp's backward map more than 1.5 px from the median of their 3 x 3
    neighbourhood in both the map and the image they sample: a single pixel taken from elsewhere."""
    region = warp.region_for(src, rgb.shape[:2])
    m, moved = warp.backward_map(src, dst, region)
    med = np.stack([cv2.medianBlur(np.ascontiguousarray(m[..., k]), 3) for k in (0, 1)], -1)
    out = warp.remap(rgb, m).astype(np.int16)
    look = np.abs(out - cv2.medianBlur(out.astype(np.uint8), 3).astype(np.int16)).max(-1)
    return int(((np.abs(m - med).max(-1) > 1.5) & moved & (look > 40)).sum())


@pytest.mark.parametrize("case", ["t1-0-sad", "t1-0-angry"])
def test_no_pixel_takes_a_thin_triangles_map_from_outside_it(case, t1_path):
    """The warp's raster gives the nodes along a triangle's edges to whichever triangle is drawn
    last; a sliver (lips pressed thin, a lid squeezed under a lowered brow) drawn after the triangle
    a node lies in extrapolated its map to the node, up to 13 of its own widths (the box clip then
    left it 2.5-4.6 px off): t1.jpg's Rachel showed a bright speck on her lower lip (sad: 2 such
    pixels) and a dark one on her lid (anger: 3). Such a node now takes the map of the proper
    triangle it lies in (one sharing a corner with the sliver). Zoomed in, 005's and 001's anger
    lost a dark spike on the upper lid above the iris too (a few pixels wide: not counted here)."""
    _, k, emotion = case.split("-")
    rgb, faces = detect(t1_path)
    f = sorted(faces, key=lambda f: f.box[0])[int(k)]
    src = mouth.meet_closed_lips(rgb, f.landmarks)
    edged = mouth.on_lip_edge(rgb, src)  # as the engine warps them
    assert _map_outliers(edged, mouth.carry_edge(src, edged, plan(src, emotion, 1.0).target), rgb) == 0


def _outline_folds(rgb, src, dst) -> int:
    """Pixels within 0.2 IOD of the face's outline where the warp's map turns over (its Jacobian
    is negative): the edge of the face against what is behind it doubles back there."""
    region = warp.region_for(src, rgb.shape[:2])
    m, _ = warp.backward_map(src, dst, region)
    gy, gx = np.gradient(m, axis=(0, 1))
    det = gx[..., 0] * gy[..., 1] - gx[..., 1] * gy[..., 0]
    band = np.zeros(det.shape, np.uint8)
    cv2.polylines(band, [np.round(src[FACE_OVAL, :2] - [region.x0, region.y0]).astype(np.int32)], True, 1,
                  max(1, int(0.2 * _iod(src))))
    return int(((det < 0) & (band > 0)).sum())


@pytest.mark.parametrize("k,emotion", [(1, "happy"), (3, "happy"), (3, "surprised")])
def test_the_face_outline_does_not_fold(k, emotion, t1_path):
    """t1.jpg's turned faces: a smile's far corner or a dropped jaw carried points across the
    face's outline, where the mesh's triangles are thin, and the map folded there (the second face
    from the left smiling: 36 pixels, the fourth 20, its surprise 35; London 139's fear 85): the
    cheek's or jaw's edge doubled back over the background. Folded cells near the outline have
    their motion smoothed into their neighbours' (`warp._unfold_outline`)."""
    rgb, faces = detect(t1_path)
    f = sorted(faces, key=lambda f: f.box[0])[k]
    src = mouth.meet_closed_lips(rgb, f.landmarks)
    assert _outline_folds(rgb, src, plan(src, emotion, 1.0).target) <= 5


def test_a_lid_squeezed_under_a_lowered_brow_is_hooded(monkeypatch):
    """Anger squeezes the upper lid's skin under the lowered brow into a thin band; left as lit as
    in the photo it read as a pale sliver with a hard edge (001, 122). The band is darkened where
    the warp packs the skin (up to HOOD_DARK at HOOD_SQUEEZE[1] source pixels a pixel): on 001's
    anger the lid band between lid and brow is 12-16% darker than the bare warp leaves it, nothing
    outside the bands changes, and surprise (whose brows go up) is all but untouched."""
    from pipeline.engines.geometric import shading

    rgb, face = _photo("001", "neutral")
    outs = {}
    for dark in (0.0, shading.HOOD_DARK):
        monkeypatch.setattr(shading, "HOOD_DARK", dark)
        for emotion in ("angry", "surprised"):
            r = edit(rgb, emotion, 1.0, detections=[face], gate=False)
            outs[emotion, dark] = (r.image.astype(np.float32).mean(-1), r.faces[0].landmarks_after)
    plain, lm = outs["angry", 0.0]
    hooded = outs["angry", shading.HOOD_DARK][0]
    bands = np.zeros(plain.shape, np.uint8)
    for lid, brow in shading.HOOD_BANDS:
        cv2.fillPoly(bands, [np.round(lm[lid + brow, :2]).astype(np.int32)], 1)
    ratio = float(np.median(hooded[bands > 0])) / float(np.median(plain[bands > 0]))
    assert 0.84 <= ratio <= 0.9, ratio
    near = cv2.dilate(bands, np.ones((3, 3), np.uint8), iterations=int(0.1 * _iod(lm)))
    assert np.array_equal(hooded[near == 0], plain[near == 0])
    s0, s1 = outs["surprised", 0.0][0], outs["surprised", shading.HOOD_DARK][0]
    assert np.abs(s1 - s0).max() <= 2  # (001: 89 pixels by one grey level, where the lid folds up)


def test_bank_lips_shrunk_onto_a_small_face_are_not_speckled(t1_path):
    """t1.jpg's face 5 (mouth about 25 px wide) closed from its smile: the bank's 128 px cut-out was
    sampled bilinearly at 5x shrink, and its lip texture aliased into bright speckles on the lower
    lip (99th percentile of fine detail inside the lips 30.7 before; 20.8 low-passed first)."""
    rgb, faces = detect(t1_path)
    faces = sorted(faces, key=lambda f: f.box[0])
    out = edit(rgb, "neutral", 1.0, detections=faces, gate=False)
    lips = cv2.erode(_poly_mask(rgb.shape[:2], out.faces[5].landmarks_after[LIPS_OUTER]).astype(np.uint8),
                     np.ones((3, 3), np.uint8)) > 0
    g = out.image.astype(np.float32).max(-1)
    fine = (g - cv2.GaussianBlur(g, (0, 0), 1.0))[lips]
    assert np.percentile(fine, 99) < 25, np.percentile(fine, 99)
