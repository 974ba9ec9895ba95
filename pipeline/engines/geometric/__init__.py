"""The geometric engine (default; CPU, offline): landmarks -> FACS action units (`expression`) ->
dense warp of the face region (`warp`) -> mouth interior (`mouth`) -> folds and wrinkles
(`shading`). Only the face's region is resampled; every pixel outside the pixels that actually
moved or were shaded keeps its value exactly.
"""
from __future__ import annotations

import numpy as np

from ...emotions import INTENSITY_MAX
from ...mesh import LIPS_OUTER
from ...timing import timer
from ...types import Face
from .. import Rendered, RenderRequest
from . import expression, eyes, mouth, shading, warp

CONTRAST = 0.35  # how far a retry moves the AU mix away from the emotion the classifier saw instead


def contrast(target: str, probs: dict[str, float], intensity: float) -> dict[str, float]:
    """Extra AUs for a retry after the classifier saw another emotion instead of `target`: more of
    the target's AUs that the rival's recipe uses less (fear's stretched lips and knit brows vs
    surprise), less of those it shares most (surprise's dropped jaw). Extras never take an AU below
    zero. Empty when the rival is neutral (more intensity is the answer then) or for contempt."""
    if target == "contempt" or not probs:
        return {}
    seen = max(probs, key=probs.get)
    theirs = expression.RECIPES.get(seen, {})
    if seen == target or not theirs:
        return {}
    return {a: (CONTRAST if w > theirs.get(a, 0.0) else -CONTRAST) * w * intensity
            for a, w in expression.RECIPES[target].items()}


class GeometricEngine:
    name = "geometric"

    def render(self, image: np.ndarray, base: np.ndarray, face: Face, request: RenderRequest) -> Rendered:
        t: dict[str, float] = {}
        with timer(t, "expression"):
            src = mouth.meet_closed_lips(image, face.landmarks)
            p = expression.plan(src, request.emotion, request.intensity, request.action_units(), teeth=request.teeth)
            # Lips that stay closed are warped from their real meeting line (both ends of the map move
            # onto it); an opening is painted over that line (`needs_interior`), and what the mouth
            # reads of the photo (teeth, an opening) stays on the planned landmarks.
            moved = src
            teeth = mouth.shows_teeth(image, src)  # asked up to four times: measured once
            if p.lip_gap_after <= p.lip_gap_before + mouth.OPENS:
                moved = mouth.on_meeting_line(image, src, teeth)
                if moved is not src:
                    p.target = mouth.carry_line(src, moved, p.target)
            # And the lower lip from its real outer edge, so that all of its red moves as lip.
            edged = mouth.on_lip_edge(image, moved)
            if edged is not moved:
                p.target = mouth.carry_edge(moved, edged, p.target)
                moved = edged
            # What the mouth stage paints: a new opening, lips closed over a smile's teeth or gap
            # (their corners tapered first, `taper_corners`), or a smile's own teeth again.
            parting = mouth.smile_parting(image, src, p.removed.get("AU12", 0.0), p.lip_gap_before)
            parted = parting is not None
            meet = not p.uses(expression.OPENING + ("AU10",))
            upper, lower = expression.TEETH_SHOWN.get(request.emotion, (1.0, 0.0))
            # A talking mouth keeps its own interior, warped (`keeps_interior`).
            talking = mouth.keeps_interior(image, src, p.lip_gap_before, p.lip_gap_after, teeth)
            needs = not talking and mouth.needs_interior(image, src, p.lip_gap_before, p.lip_gap_after,
                                                         teeth, parted, meet)
            opening = src  # the landmarks the painted interior reads the photo's own mouth from
            closes = needs and mouth.closes_over(image, src, p.target, p.pose.s, teeth, parted, meet)
            if closes:
                p.target = mouth.taper_corners(p.target)
            else:
                # An open mouth's inner lips from the teeth's real edge: the mesh's can lie on the
                # teeth, which the warp then carried as lip.
                teethed = mouth.on_teeth_edge(image, moved, teeth)
                if teethed is not moved:
                    p.target = mouth.carry_teeth_edge(moved, teethed, p.target)
                    moved = opening = teethed
                # And the upper lip down to its red's real lower edge (a broad smile's thin lip
                # reaches below the mesh's): all of its red moves as lip, none is painted over.
                reddened = mouth.on_red_bottom(image, moved, teeth)
                if reddened is not moved:
                    p.target = mouth.carry_red_bottom(moved, reddened, p.target)
                    moved = opening = reddened
            # A smile's own teeth, reshaped by the warp or by a wider opening painted over them,
            # are painted again at their own size.
            own_size = upper >= 1 and not talking and mouth.reshapes_teeth(
                image, src, p.target, p.lip_gap_before, p.lip_gap_after, teeth)
            # Under disgust's raised lip a smile's teeth stay where the photo has them (they are
            # the skull's; the jaw does not drop): warped with the lips they were stretched into
            # tall fangs over the lower row, a clenched grimace the gate read as anger (tune half,
            # from smiles: 036, 107); painted from the lip, a third of the band hung as a thin
            # stroke over a black gap (013, 083). A thin band that would smear is left as before
            # (`mouth.SMEAR_MAX`). Tune half, disgust from the 34 smiles, ungated: ensemble 68 -> 74%.
            jaw_closed = not p.uses(("AU26", "AU27"))
            in_place = upper < 1 and jaw_closed and teeth()
        r = Rendered(request, (0, 0, 0, 0), None, None, p.target, p.applied, p.removed, self.name, t)
        if np.abs(p.target - moved)[:, :2].max() < 1e-3 and not p.applied:
            return r
        region = warp.region_for(src, image.shape[:2])
        iod = p.pose.s
        with timer(t, "warp"):
            mapping, changed = warp.backward_map(moved, p.target, region)
            eyed = eyes.fixed_eyeballs(mapping, moved, p.target, region)
            if eyed is not None:
                changed |= eyed
            warped = warp.remap(base, mapping)  # uint8: float only where mouth and shading draw
            if eyed is None:  # a raised lid: the iris stays round over the photo's own eyeball
                raised = eyes.raised_lids(warped, base, moved, p.target, region)
                if raised is not None:
                    changed |= raised
            lips = np.concatenate([src[LIPS_OUTER, :2], p.target[LIPS_OUTER, :2]])
            warp.antialias_squeezed(warped, base, mapping, region, lips, 0.05 * iod)
        with timer(t, "mouth"):
            if needs or own_size or in_place:
                m = mouth.render_interior(image, opening, p.target, warped, region, iod,
                                          upper_teeth=upper, lower_teeth=lower, teeth=teeth,
                                          jaw_closed=jaw_closed,
                                          parted_smile=parted, lips_meet=meet, lip_bank=parting != "own",
                                          own_size=own_size, in_place=in_place,
                                          only_in_place=not (needs or own_size))
                if m is not None:
                    changed |= m > 0
        with timer(t, "shading"):
            m = shading.render(warped, p.target, p.applied, region, iod, p.removed,
                               keep_folds=request.emotion in expression.DEEPENS_NASOLABIAL)
            if m is not None:
                changed |= m
            m = shading.hooded_lids(warped, mapping, p.target, region, iod)
            if m is not None:
                changed |= m
        r.region = (region.x0, region.y0, region.x1, region.y1)
        r.pixels, r.mask = warped, changed
        return r

    def next_request(self, last: RenderRequest, check) -> RenderRequest | None:
        """A missed emotion gets more of it (and a mix moved away from the emotion seen instead),
        a lost identity less."""
        from ... import gate

        nxt = gate.next_intensity(last.intensity, check, INTENSITY_MAX)
        extra = contrast(last.emotion, check.probs, nxt or last.intensity) if check.identity_ok else {}
        if nxt is None and not extra:
            return None  # nothing stronger and nothing different left to try
        return last.next(intensity=nxt or last.intensity, adjust=extra)
