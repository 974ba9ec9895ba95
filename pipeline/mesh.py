"""Index sets of the 468-point MediaPipe face mesh that every stage shares (see
../shared/docs/EXPRESSIONS.md for how they were checked). Facts about the landmarker, not about
any one engine."""

LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
LIPS_INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
LIPS_INNER_UPPER = [308, 415, 310, 311, 312, 13, 82, 81, 80, 191, 78]
# Every ring of each lip, outer edge to inner edge, without the corners (61/291, 76/306, 62/292,
# 78/308, which both lips share): MediaPipe's lipsUpper/LowerOuter, SemiOuter, SemiInner, Inner.
LIPS_UPPER_RINGS = [185, 40, 39, 37, 0, 267, 269, 270, 409, 184, 74, 73, 72, 11, 302, 303, 304, 408,
                    183, 42, 41, 38, 12, 268, 271, 272, 407, 191, 80, 81, 82, 13, 312, 311, 310, 415]
LIPS_LOWER_RINGS = [146, 91, 181, 84, 17, 314, 405, 321, 375, 77, 90, 180, 85, 16, 315, 404, 320, 307,
                    96, 89, 179, 86, 15, 316, 403, 319, 325, 95, 88, 178, 87, 14, 317, 402, 318, 324]
LIP_CORNERS = [61, 291, 76, 306, 62, 292, 78, 308]
EYE_L = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]  # image left
EYE_R = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
# Upper and lower lids, corner to corner, matched point for point (for eye closure).
LID_UP_L, LID_LO_L = [246, 161, 160, 159, 158, 157, 173], [7, 163, 144, 145, 153, 154, 155]
LID_UP_R, LID_LO_R = [466, 388, 387, 386, 385, 384, 398], [249, 390, 373, 374, 380, 381, 382]
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
# Points that expressions barely move: eye corners, nose bridge, forehead, temples.
STABLE = [33, 133, 362, 263, 6, 168, 197, 195, 5, 4, 1, 10, 151, 9, 8, 127, 356, 234, 454, 162, 389, 21, 251]
