"""Mouth interior: what shows when closed lips part (AU25/26/27, a broad smile).

Stretching the lip line into the opening looks like rubber, so the opening is filled instead: an
upper row of teeth hanging from the upper lip, a dark cavity below, a hint of tongue at the bottom of
a wide opening. Colours come from the person: teeth from the whites of their own eyes (lit like the
rest of the face; a touch warmer, as enamel is), the cavity from their own lip colour, darkened.
Where the source mouth already shows teeth (a smile), the real interior is warped instead.
"""
from __future__ import annotations

import cv2
import numpy as np

from ...mesh import EYE_L, EYE_R, LIPS_INNER_LOWER, LIPS_INNER_UPPER, LIPS_OUTER
from .warp import Region

# Tooth edges from the centre line outwards, as a fraction of the opening's width: incisors are
# wider than canines and premolars, and they recede into shadow towards the corners.
TOOTH_EDGES = np.array([0.0, 0.11, 0.2, 0.27, 0.33, 0.38, 0.43, 0.47])
TEETH_SHOWING = 0.2  # fraction of enamel-like pixels in the source opening that means "real teeth"


def _poly_mask(pts: np.ndarray, region: Region, shape) -> np.ndarray:
    """Anti-aliased polygon mask (float32 0..1) via 4-bit sub-pixel rasterisation."""
    mask = np.zeros(shape, np.uint8)
    p = np.round((pts[:, :2] - [region.x0, region.y0]) * 16).astype(np.int32)
    cv2.fillPoly(mask, [p], 255, lineType=cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def _sclera_colour(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Mean colour of the brightest, least saturated pixels inside both eyes."""
    px = []
    for eye in (EYE_L, EYE_R):
        pts = lm[eye, :2]
        x0, y0 = np.floor(pts.min(0)).astype(int)
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
        x0, y0 = max(x0, 0), max(y0, 0)
        crop = img[y0:y1, x0:x1]
        if crop.size:
            m = np.zeros(crop.shape[:2], np.uint8)
            cv2.fillPoly(m, [np.round(pts - [x0, y0]).astype(np.int32)], 1)
            px.append(crop[m > 0].astype(np.float32))
    px = np.concatenate(px) if px else np.zeros((0, 3), np.float32)
    if len(px) < 10:
        return np.array([215.0, 205.0, 190.0])
    score = px.mean(1) - (px.max(1) - px.min(1))
    top = px[score >= np.percentile(score, 70)]
    return top.mean(0)


def _skin_brightness(img: np.ndarray, lm: np.ndarray) -> float:
    """90th percentile of brightness on the cheeks and forehead (mesh points, no hair or eyes)."""
    pts = np.round(lm[[50, 280, 101, 330, 151, 9, 108, 337, 205, 425], :2]).astype(int)
    h, w = img.shape[:2]
    pts[:, 0] = pts[:, 0].clip(0, w - 1)
    pts[:, 1] = pts[:, 1].clip(0, h - 1)
    return float(np.percentile(img[pts[:, 1], pts[:, 0]].astype(np.float32).max(1), 90))


def _lip_colour(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    pts = np.round(lm[LIPS_OUTER, :2]).astype(int)
    h, w = img.shape[:2]
    pts[:, 0] = pts[:, 0].clip(0, w - 1)
    pts[:, 1] = pts[:, 1].clip(0, h - 1)
    return img[pts[:, 1], pts[:, 0]].astype(np.float32).mean(0)


def render_interior(src_img: np.ndarray, src_lm: np.ndarray, dst_lm: np.ndarray, warped: np.ndarray,
                    region: Region, iod_px: float, amount: float = 1.0) -> np.ndarray | None:
    """Composite a synthesised interior into `warped` (the region's pixels, uint8 RGB, in place)
    inside the destination inner-lip polygon. Returns the opening's mask, or None when nothing was drawn."""
    poly = dst_lm[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1], :2]
    mask = _poly_mask(poly, region, warped.shape[:2])
    if mask.max() <= 0:
        return None
    ys, xs = np.nonzero(mask > 0)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sub = mask[y0:y1, x0:x1]
    # Upper and lower inner-lip curves as functions of x (region coordinates).
    up = dst_lm[LIPS_INNER_UPPER, :2] - [region.x0, region.y0]
    lo = dst_lm[LIPS_INNER_LOWER, :2] - [region.x0, region.y0]
    up, lo = up[np.argsort(up[:, 0])], lo[np.argsort(lo[:, 0])]
    gx = np.arange(x0, x1, dtype=np.float32)
    y_up = np.interp(gx, up[:, 0], up[:, 1])
    y_lo = np.interp(gx, lo[:, 0], lo[:, 1])
    left, right = up[0, 0], up[-1, 0]
    width = max(right - left, 1.0)
    u = (gx - (left + right) / 2) / width  # -0.5 .. 0.5 across the opening
    gy = np.arange(y0, y1, dtype=np.float32)[:, None]
    depth = gy - y_up[None]  # pixels below the upper lip

    # Teeth take the hue of the eye whites (same light) at the brightness of well-lit enamel:
    # a little below the brightest skin, never grey.
    sclera = _sclera_colour(src_img, src_lm)
    skin = _skin_brightness(src_img, src_lm)
    teeth = sclera / max(sclera.max(), 1.0)
    teeth = 0.6 * teeth + 0.4  # enamel is less saturated than a tinted sclera
    teeth = np.clip(teeth * np.array([1.0, 0.97, 0.9]) * min(max(skin * 1.05, 170.0), 240.0), 0, 245)
    lips = _lip_colour(src_img, src_lm)
    cavity = lips * 0.22
    tongue = lips * np.array([0.75, 0.5, 0.5])

    # Upper teeth: visible height ~ 0.17 of the mouth width (incisors), shorter towards the corners.
    au = np.abs(u)
    # A jaw dropped wide (surprise) shows less of the upper teeth than a smile or a grimace, whose
    # stretched lips bare them: visible height shrinks as the opening gets taller than wide.
    tall = float(np.clip((np.max(y_lo - y_up) / width - 0.35) / 0.3, 0, 1))
    tooth_h = width * 0.17 * (1 - 0.55 * tall) * (1 - 1.3 * au ** 2)
    k = np.searchsorted(TOOTH_EDGES, au).clip(1, len(TOOTH_EDGES) - 1)
    lo_e, hi_e = TOOTH_EDGES[k - 1], TOOTH_EDGES[k]
    t = (au - lo_e) / (hi_e - lo_e)  # position within the tooth, 0..1
    # Each tooth's bottom edge is rounded; gaps between teeth are thin dark lines.
    edge = tooth_h * (1 - 0.25 * (2 * t - 1) ** 2)
    gap = np.exp(-0.5 * ((np.minimum(t, 1 - t) * (hi_e - lo_e) * width) / max(width * 0.004, 0.5)) ** 2)
    in_tooth = 1 / (1 + np.exp((depth - edge[None]) / max(width * 0.008, 0.5)))
    shade_x = (1 - 1.6 * au ** 2).clip(0.25)  # corners are in shadow
    shade_y = 0.78 + 0.22 * np.clip(depth / np.maximum(edge[None], 1), 0, 1)  # lip shadow at the top
    tooth_rgb = teeth[None, None] * (shade_x * (1 - 0.18 * gap))[None, :, None] * shade_y[..., None]

    # Cavity: darker towards the corners; tongue rises at the bottom of a wide opening.
    open_h = np.maximum(y_lo - y_up, 1)
    below = np.clip((gy - y_up[None]) / open_h[None], 0, 1)
    tongue_w = np.clip((below - 0.62) / 0.25, 0, 1) * np.clip((open_h / width - 0.25) / 0.2, 0, 1)[None]
    cav_rgb = cavity[None, None] * (0.6 + 0.4 * (1 - 2 * au))[None, :, None]
    cav_rgb = cav_rgb * (1 - tongue_w[..., None]) + tongue[None, None] * (tongue_w * shade_x[None])[..., None]

    fill = tooth_rgb * in_tooth[..., None] + cav_rgb * (1 - in_tooth[..., None])
    a = (sub * amount)[..., None]
    warped[y0:y1, x0:x1] = np.clip(warped[y0:y1, x0:x1] * (1 - a) + fill * a + 0.5, 0, 255).astype(np.uint8)
    return mask


def teeth_showing(img: np.ndarray, lm: np.ndarray) -> bool:
    """Whether the source mouth already shows teeth (then the real ones are warped, not painted):
    enough bright, unsaturated pixels inside the inner-lip polygon."""
    poly = lm[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1], :2]
    x0, y0 = np.floor(poly.min(0)).astype(int)
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    crop = img[y0:y1, x0:x1]
    if crop.size == 0:
        return False
    m = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(poly - [x0, y0]).astype(np.int32)], 1)
    px = crop[m > 0].astype(np.float32)
    if len(px) < 20:  # closed lips: a sliver, no teeth
        return False
    # Thresholds from the London photos: they flag 29 of 68 real smiles (about half show teeth)
    # and 0 of 68 neutral faces.
    bright = px.mean(1) > 0.75 * _skin_brightness(img, lm)
    grey = (px.max(1) - px.min(1)) < 0.25 * px.max(1).clip(1)
    return float((bright & grey).mean()) > TEETH_SHOWING


def needs_interior(img: np.ndarray, src_lm: np.ndarray, src_gap: float, dst_gap: float) -> bool:
    """Paint an interior when the lips open further than they were and no real teeth show."""
    return dst_gap > src_gap + 0.01 and not teeth_showing(img, src_lm)
