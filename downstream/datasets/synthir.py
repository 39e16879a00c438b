"""SynthIR: procedurally generated thermal (LWIR, white-hot) street scenes with detection and segmentation labels.

The embedded demo suite cannot download M3FD or FMB, so it renders frames that look like an 8-bit uncooled
thermal camera looking down a street, together with M3FD-style boxes and an FMB-style per-pixel mask.
``render_scene(seed)`` is deterministic: one ``numpy.random.default_rng(seed)`` drives everything.

Scene model
    A pinhole camera at height ``cam_h`` (1.3-2.2 m on a vehicle, 3-6 m when elevated) looks along a straight, flat
    street. A ground point at lateral offset ``u`` and distance ``d`` (metres) projects to
    ``x = vx + u * f / d``, ``y = horizon + cam_h * f / d``; an object standing at ``d`` is drawn at ``f / d``
    pixels per metre, so far objects are small and close to the horizon. The street has 2-4 lanes with dashed lane
    markings, kerbs and sidewalks; beyond each sidewalk lies one of: a row of buildings whose facades recede to the
    vanishing point (windows on a floor grid), trees with an optional hedge, or open verge (grass or bare ground)
    with a guard rail. A skyline of distant buildings and tree tops sits on the horizon under a sky with clouds.
    Street furniture: street lights (pole + arm + luminaire), utility poles, traffic signs, and traffic lights at an
    optional intersection. Traffic: cars, buses, trucks and motorcycles in lanes (rear view, or front view on
    oncoming lanes), vehicles crossing at the intersection (side view), pedestrians on sidewalks and crossings, and
    cyclists. Everything is painted with a z-buffer (per-pixel distance), so occlusion is exact.

Thermal model (degrees Celsius, white-hot)
    Night or day with an ambient temperature. Clear sky is 30-45 K below ambient at the top, rising smoothly to a
    few K below ambient at the horizon; clouds are warmer patches. The road is above ambient (sun-heated by day) and
    appears cooler with distance (grazing-angle emissivity), lane paint differs slightly; sidewalks are close to the
    road; facades are near or above ambient, with windows warmer at night and colder (sky reflections) by day;
    vegetation is cool and strongly textured; poles and signs are near or slightly below ambient. Warm objects:
    people (skin 33-35.5, clothing 28-32), vehicles (body above ambient, hot tyres, engine, exhaust and
    underbody, cold sky-reflecting glass), luminaires and traffic-light heads. A smooth large-scale field and fine
    per-pixel texture, with per-class amplitudes, are added to the temperature map.

Labels
    ``mask``: FMB ids (``FMB_CLASSES``) of the surface each pixel shows. Tree trunks, hedges and grass verges are
    ``vegetation``; guard rails, low walls and bare ground are ``unlabeled``; a motorcycle's rider is part of the
    motorcycle (mask and box), a cyclist's rider is a ``person`` (with a People box) and the bicycle is
    ``bicycle`` without a box (M3FD has no bicycle class); ``lamp`` = lamp heads (traffic-light housings and
    street-light luminaires), ``pole`` = pole shafts and arms, ``sign`` = sign panels.
    ``boxes``: M3FD ids (``M3FD_CLASSES``) and the tight visible extent ``x1, y1, x2, y2`` (x2, y2 exclusive) of
    each object instance after occlusion and image-border clipping. M3FD "Lamp" boxes are traffic-light heads only
    (as in the real M3FD annotations, where street-light luminaires are not boxed). An instance gets no box when
    its visible extent is under ``MIN_BOX_PX`` pixels in width or height, or less than
    ``MIN_VISIBLE_FRACTION`` of its in-image pixels remain visible.

Sensor model
    Temperature is taken as the (locally linear) radiometric signal. Optics: Gaussian PSF (sigma 0.6-1.0 px).
    Vignetting: an additive radial fall-off (0.5-2.5 K at the corners). Fixed-pattern noise: per-column
    (sigma 0.04-0.15 K) and per-row (0.02-0.06 K) offsets. Temporal noise: white Gaussian (0.08-0.2 K). Auto gain
    control as in real cores: the 0.5th-99.8th percentile range is normalised, blended (40-70 %) with its
    plateau-clipped histogram equalisation, mapped onto grey levels 6-249 and quantised to uint8, so nothing clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from downstream.datasets.base import Dataset, register_kind
from downstream.datasets.fmb import FMB_CLASSES, FMB_PALETTE
from downstream.datasets.m3fd import M3FD_CLASSES
from downstream.errors import DataError
from downstream.sample import IGNORE_INDEX, LABEL_BOXES, LABEL_MASK, Sample

GENERATOR_VERSION = 1  # bump when render_scene's output changes, so caches keyed on it are invalidated


MIN_BOX_PX = 4
MIN_VISIBLE_FRACTION = 0.35

(
    UNLABELED,
    ROAD,
    SIDEWALK,
    BUILDING,
    LAMP,
    SIGN,
    VEGETATION,
    SKY,
    PERSON,
    CAR,
    TRUCK,
    BUS,
    MOTORCYCLE,
    BICYCLE,
    POLE,
) = range(len(FMB_CLASSES))
PEOPLE_ID, CAR_ID, BUS_ID, MOTORCYCLE_ID, LAMP_ID, TRUCK_ID = range(len(M3FD_CLASSES))
M3FD_TO_FMB = {PEOPLE_ID: PERSON, CAR_ID: CAR, BUS_ID: BUS, MOTORCYCLE_ID: MOTORCYCLE, LAMP_ID: LAMP, TRUCK_ID: TRUCK}

# Texture amplitude (K) per FMB id: (smooth large-scale field, fine per-pixel texture).
_TEXTURE = np.array(
    [
        (0.8, 0.4),
        (0.5, 0.25),
        (0.5, 0.3),
        (0.8, 0.25),
        (0.5, 0.2),
        (0.3, 0.2),
        (1.5, 1.1),
        (0.0, 0.0),
        (0.6, 0.35),
        (0.6, 0.3),
        (0.6, 0.3),
        (0.6, 0.3),
        (0.6, 0.35),
        (0.3, 0.2),
        (0.3, 0.2),
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class SynthScene:
    image: np.ndarray  # uint8 (H, W) thermal frame
    boxes: np.ndarray  # float32 (N, 5): M3FD class id, x1, y1, x2, y2 (pixels, x2/y2 exclusive)
    mask: np.ndarray  # uint8 (H, W) FMB ids


@dataclass(frozen=True)
class _Camera:
    horizon: float  # image row of the horizon
    vx: float  # image column of the vanishing point
    height: float  # metres above the road
    focal: float  # pixels

    def scale(self, d: float) -> float:
        """Pixels per metre at distance d."""
        return self.focal / d

    def ground_y(self, d: float) -> float:
        return self.horizon + self.height * self.focal / d

    def x(self, u: float, d: float) -> float:
        return self.vx + u * self.focal / d


@dataclass(frozen=True)
class _Street:
    left: float  # lateral position of the left road edge (negative)
    right: float  # lateral position of the right road edge
    lane_w: float
    lanes: int
    sidewalk: float  # sidewalk width
    sides: tuple[str, str]  # roadside kind left/right: "buildings" | "trees" | "open"
    verges: tuple[int, int]  # FMB id of the ground beyond each sidewalk
    crossing: float | None  # distance of an intersection with traffic lights, or None

    def edge(self, side: int) -> float:
        return self.left if side < 0 else self.right

    def lane_centre(self, lane: int) -> float:
        return self.left + (lane + 0.5) * self.lane_w


@dataclass(frozen=True)
class _Thermal:
    day: bool
    ambient: float
    sky_top: float
    sky_horizon: float
    road: float
    sidewalk: float
    verge: float
    building: float
    window: float  # window minus facade
    vegetation: float
    metal: float  # poles, signs, rails
    luminaire: float


class _Canvas:
    """Temperature, label, instance and depth buffers with z-tested primitives in pixel coordinates."""

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        self.temp = np.zeros((h, w), np.float32)
        self.label = np.full((h, w), SKY, np.uint8)
        self.depth = np.full((h, w), np.inf, np.float32)
        self.inst = np.zeros((h, w), np.int32)
        self._own = np.zeros((h, w), bool)
        self._cur = 0
        self._instances: list[tuple[int, int, int, tuple[int, int, int, int]]] = []

    def begin(self, m3fd_id: int) -> None:
        """Start a boxed instance: primitives until ``end`` belong to it."""
        self._cur = len(self._instances) + 1
        self._own[:] = False
        self._instances.append((m3fd_id, self._cur, 0, (0, 0, 0, 0)))

    def end(self) -> None:
        rows, cols = np.flatnonzero(self._own.any(1)), np.flatnonzero(self._own.any(0))
        m3fd_id, iid, _, _ = self._instances[-1]
        extent = (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) if rows.size else (0, 0, 0, 0)
        self._instances[-1] = (m3fd_id, iid, int(self._own.sum()), extent)
        self._cur = 0

    def paint(self, r0: int, c0: int, cov: np.ndarray, temp, label, depth) -> None:
        """Write ``cov`` pixels that are not behind what is already there; temp/label/depth: scalars or arrays."""
        sl = (slice(r0, r0 + cov.shape[0]), slice(c0, c0 + cov.shape[1]))
        if self._cur:
            self._own[sl] |= cov
        m = cov & (depth <= self.depth[sl])
        for buf, value in ((self.depth, depth), (self.temp, temp), (self.label, label)):
            _put(buf[sl], m, value)
        self.inst[sl][m] = self._cur

    def grid(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, np.ndarray, np.ndarray] | None:
        """First row/column and pixel-centre coordinates of the in-image part of a box, or None if empty."""
        c0, c1 = max(int(np.ceil(x0 - 0.5)), 0), min(int(np.ceil(x1 - 0.5)), self.w)
        r0, r1 = max(int(np.ceil(y0 - 0.5)), 0), min(int(np.ceil(y1 - 0.5)), self.h)
        if c1 <= c0 or r1 <= r0:
            return None
        return r0, c0, np.arange(r0, r1)[:, None] + 0.5, np.arange(c0, c1)[None, :] + 0.5

    def rect(self, x0: float, y0: float, x1: float, y1: float, temp: float, label: int, depth: float) -> None:
        x0, x1 = _widen(x0, x1)
        y0, y1 = _widen(y0, y1)
        g = self.grid(x0, y0, x1, y1)
        if g is not None:
            r0, c0, yy, xx = g
            self.paint(r0, c0, np.ones((yy.shape[0], xx.shape[1]), bool), temp, label, depth)

    def ellipse(
        self, cx: float, cy: float, rx: float, ry: float, temp: float, label: int, depth: float, ring: float = 0.0
    ) -> None:
        """Filled ellipse, or an elliptical ring of thickness ``ring`` pixels (at least 0.8 px)."""
        rx, ry = max(rx, 0.5), max(ry, 0.5)
        g = self.grid(cx - rx, cy - ry, cx + rx, cy + ry)
        if g is None:
            return
        r0, c0, yy, xx = g
        cov = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        if ring > 0:
            t = max(ring, 0.8)
            if rx > t and ry > t:
                cov &= ((xx - cx) / (rx - t)) ** 2 + ((yy - cy) / (ry - t)) ** 2 > 1.0
        self.paint(r0, c0, cov, temp, label, depth)

    def polygon(self, pts: list[tuple[float, float]], temp: float, label: int, depth: float) -> None:
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        g = self.grid(min(xs), min(ys), max(xs), max(ys))
        if g is None:
            return
        r0, c0, yy, xx = g
        cov = np.zeros((yy.shape[0], xx.shape[1]), bool)
        for (xa, ya), (xb, yb) in zip(pts, pts[1:] + pts[:1], strict=True):
            if ya == yb:
                continue
            crosses = (ya > yy) != (yb > yy)
            cov ^= crosses & (xx < xa + (yy - ya) * (xb - xa) / (yb - ya))
        self.paint(r0, c0, cov, temp, label, depth)

    def segment(
        self, xa: float, ya: float, xb: float, yb: float, r: float, temp: float, label: int, depth: float
    ) -> None:
        """Thick line (capsule) of radius r pixels (at least 0.5)."""
        r = max(r, 0.5)
        g = self.grid(min(xa, xb) - r, min(ya, yb) - r, max(xa, xb) + r, max(ya, yb) + r)
        if g is None:
            return
        r0, c0, yy, xx = g
        dx, dy = xb - xa, yb - ya
        t = np.clip(((xx - xa) * dx + (yy - ya) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
        self.paint(r0, c0, (xx - xa - t * dx) ** 2 + (yy - ya - t * dy) ** 2 <= r * r, temp, label, depth)

    def boxes(self) -> np.ndarray:
        out = []
        for m3fd_id, iid, total, (r0, r1, c0, c1) in self._instances:
            vis = self.inst[r0:r1, c0:c1] == iid
            n = int(vis.sum())
            if n == 0 or n < MIN_VISIBLE_FRACTION * total:
                continue
            rows, cols = np.flatnonzero(vis.any(1)), np.flatnonzero(vis.any(0))
            x1, x2, y1, y2 = c0 + cols[0], c0 + cols[-1] + 1, r0 + rows[0], r0 + rows[-1] + 1
            if x2 - x1 >= MIN_BOX_PX and y2 - y1 >= MIN_BOX_PX:
                out.append((m3fd_id, x1, y1, x2, y2))
        return np.array(out, np.float32).reshape(-1, 5)


def _put(buf: np.ndarray, m: np.ndarray, value) -> None:
    """buf[m] = value for a scalar value or an array broadcastable to m."""
    buf[m] = value if np.ndim(value) == 0 else np.broadcast_to(value, m.shape)[m]


def _widen(a: float, b: float) -> tuple[float, float]:
    """Make thin shapes at least one pixel wide so that they do not vanish between pixel centres."""
    if b - a >= 1.0:
        return a, b
    c = 0.5 * (a + b)
    return c - 0.5, c + 0.5


class _Brush:
    """Draws in object-local metres (u to the right of the anchor, v up from the ground), mirrored if facing=-1."""

    def __init__(self, cv: _Canvas, cam: _Camera, u: float, d: float, facing: float = 1.0):
        self.cv, self.s, self.depth, self.facing = cv, cam.scale(d), d, facing
        self.x, self.yb = cam.x(u, d), cam.ground_y(d)

    def _p(self, u: float, v: float) -> tuple[float, float]:
        return self.x + self.facing * u * self.s, self.yb - v * self.s

    def rect(self, u0: float, v0: float, u1: float, v1: float, temp: float, label: int) -> None:
        (xa, ya), (xb, yb) = self._p(u0, v1), self._p(u1, v0)
        self.cv.rect(min(xa, xb), ya, max(xa, xb), yb, temp, label, self.depth)

    def ellipse(self, cu: float, cv: float, ru: float, rv: float, temp: float, label: int, ring: float = 0.0) -> None:
        self.cv.ellipse(*self._p(cu, cv), ru * self.s, rv * self.s, temp, label, self.depth, ring * self.s)

    def polygon(self, pts: list[tuple[float, float]], temp: float, label: int) -> None:
        self.cv.polygon([self._p(u, v) for u, v in pts], temp, label, self.depth)

    def segment(self, a: tuple[float, float], b: tuple[float, float], r: float, temp: float, label: int) -> None:
        self.cv.segment(*self._p(*a), *self._p(*b), r * self.s, temp, label, self.depth)


# ----------------------------------------------------------------------------------------------- scene sampling


def _sample_camera(rng: np.random.Generator, h: int, w: int) -> _Camera:
    elevated = rng.random() < 0.3
    cam_h = rng.uniform(3.0, 6.0) if elevated else rng.uniform(1.3, 2.2)
    horizon = h * (rng.uniform(0.22, 0.36) if elevated else rng.uniform(0.36, 0.48))
    focal = 0.5 * w / np.tan(np.radians(rng.uniform(40.0, 60.0)) / 2)
    return _Camera(horizon, w * rng.uniform(0.38, 0.62), cam_h, focal)


def _sample_street(rng: np.random.Generator) -> _Street:
    lanes = int(rng.integers(2, 5))
    lane_w = rng.uniform(3.0, 3.6)
    ego = rng.uniform(lanes / 2, lanes - 0.2)  # camera in the right half (right-hand traffic)
    sides = tuple(rng.choice(["buildings", "trees", "open"], p=[0.5, 0.3, 0.2]) for _ in range(2))
    verges = tuple(int(rng.choice([VEGETATION, UNLABELED])) for _ in range(2))
    crossing = rng.uniform(14.0, 40.0) if rng.random() < 0.65 else None
    return _Street(-ego * lane_w, (lanes - ego) * lane_w, lane_w, lanes, rng.uniform(2.0, 4.0), sides, verges, crossing)


def _sample_thermal(rng: np.random.Generator) -> _Thermal:
    day = bool(rng.random() < 0.5)
    amb = rng.uniform(2.0, 18.0) if day else rng.uniform(-5.0, 15.0)
    road = amb + (rng.uniform(5.0, 10.0) if day else rng.uniform(1.0, 4.0))
    return _Thermal(
        day=day,
        ambient=amb,
        sky_top=amb - rng.uniform(30.0, 45.0),
        sky_horizon=amb - rng.uniform(4.0, 10.0),
        road=road,
        sidewalk=road + (rng.uniform(-3.0, 0.0) if day else rng.uniform(-1.0, 1.0)),
        verge=amb + (rng.uniform(0.0, 4.0) if day else rng.uniform(-3.0, 0.0)),
        building=amb + (rng.uniform(2.0, 8.0) if day else rng.uniform(0.5, 3.0)),
        window=-rng.uniform(1.0, 4.0) if day else rng.uniform(1.0, 3.0),
        vegetation=amb + (rng.uniform(-2.0, 2.0) if day else rng.uniform(-4.0, -1.0)),
        metal=amb + (rng.uniform(-1.0, 3.0) if day else rng.uniform(-3.0, 0.0)),
        luminaire=amb + (rng.uniform(8.0, 15.0) if day else rng.uniform(20.0, 45.0)),
    )


# ------------------------------------------------------------------------------------------- background layers


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float, aspect: float = 1.0) -> np.ndarray:
    """Unit-variance value noise with correlation length ~cell pixels (x: cell*aspect), smoothstep-interpolated."""
    grid = rng.standard_normal((int(h / cell) + 3, int(w / (cell * aspect)) + 3))

    def coords(n: int, cell: float) -> tuple[np.ndarray, np.ndarray]:
        f = (np.arange(n) + 0.5) / cell
        i = f.astype(int)
        t = f - i
        return i, t * t * (3 - 2 * t)

    (iy, ty), (ix, tx) = coords(h, cell), coords(w, cell * aspect)
    rows = grid[iy] * (1 - ty)[:, None] + grid[iy + 1] * ty[:, None]
    out = rows[:, ix] * (1 - tx) + rows[:, ix + 1] * tx
    return ((out - out.mean()) / (out.std() + 1e-6)).astype(np.float32)


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflected borders (numpy only)."""
    r = max(int(np.ceil(3 * sigma)), 1)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (r, r)
        p = np.pad(img, pad, mode="reflect")
        n = img.shape[axis]
        img = sum(k[i] * (p[i : i + n] if axis == 0 else p[:, i : i + n]) for i in range(2 * r + 1))
    return img


def _paint_sky(cv: _Canvas, cam: _Camera, th: _Thermal, rng: np.random.Generator) -> None:
    y = (np.arange(cv.h) + 0.5)[:, None]
    above = np.clip(cam.horizon - y, 0, None)
    grad = th.sky_top + (th.sky_horizon - th.sky_top) * np.exp(-above / (0.3 * cv.h))
    clouds = np.clip(_smooth_noise(rng, cv.h, cv.w, cv.h / 8, 3.0) - rng.uniform(0.0, 1.5), 0, None)
    cv.temp[:] = grad + clouds * rng.uniform(4.0, 12.0)


def _paint_skyline(cv: _Canvas, cam: _Camera, th: _Thermal, rng: np.random.Generator) -> None:
    """Distant buildings and tree tops standing on the horizon."""
    x = -rng.uniform(0, 10)
    base = cam.horizon + 3
    while x < cv.w:
        wid = rng.uniform(0.03, 0.12) * cv.w
        if rng.random() < 0.5:
            top = cam.horizon - rng.uniform(0.01, 0.09) * cv.h
            cv.rect(x, top, x + wid, base, th.ambient + rng.uniform(-4.0, 0.0), BUILDING, 2000.0)
        else:
            for _ in range(3):
                cx, r = x + rng.uniform(0, wid), rng.uniform(0.01, 0.04) * cv.h
                cv.ellipse(cx, cam.horizon - 0.5 * r, 1.5 * r, r, th.vegetation - 3.0, VEGETATION, 2000.0)
            cv.rect(x, cam.horizon - 0.01 * cv.h, x + wid, base, th.vegetation - 3.0, VEGETATION, 2000.0)
        x += wid


def _paint_ground(cv: _Canvas, cam: _Camera, st: _Street, th: _Thermal, rng: np.random.Generator) -> None:
    r0 = int(np.floor(cam.horizon + 0.5))
    if r0 >= cv.h:
        return
    y = (np.arange(r0, cv.h) + 0.5)[:, None]
    s = np.maximum(y - cam.horizon, 1e-3) / cam.height  # pixels per metre
    d = cam.focal / s
    u = ((np.arange(cv.w) + 0.5)[None, :] - cam.vx) / s
    far = d / (d + 60.0)  # grazing-angle emissivity drop with distance
    road = th.road - 0.35 * far * (th.road - th.sky_horizon)
    walk = th.sidewalk - 0.35 * far * (th.sidewalk - th.sky_horizon)
    verge = th.verge - 0.25 * far * (th.verge - th.sky_horizon)

    label = np.where(u < 0, st.verges[0], st.verges[1]).astype(np.uint8)
    temp = np.broadcast_to(verge, u.shape).copy()
    on_walk = (u > st.left - st.sidewalk) & (u < st.right + st.sidewalk)
    label[on_walk], temp[on_walk] = SIDEWALK, np.broadcast_to(walk, u.shape)[on_walk]
    kerb = on_walk & ((np.abs(u - st.left) < 0.2) | (np.abs(u - st.right) < 0.2))
    temp[kerb] -= 1.5
    on_road = (u >= st.left) & (u <= st.right)
    label[on_road] = ROAD
    temp[on_road] = np.broadcast_to(road, u.shape)[on_road]

    paint = -1.5 if th.day else -0.6
    lines = (np.abs(u - (st.left + 0.25)) < 0.08) | (np.abs(u - (st.right - 0.25)) < 0.08)
    for k in range(1, st.lanes):
        dash = (d + rng.uniform(0, 9)) % 9.0 < 3.0
        lines |= (np.abs(u - (st.left + k * st.lane_w)) < 0.07) & dash
    tracks = np.zeros(u.shape, bool)
    for k in range(st.lanes):
        for off in (-0.8, 0.8):
            tracks |= np.abs(u - st.lane_centre(k) - off) < 0.3
    temp[tracks & on_road] += rng.uniform(-1.0, 1.0)
    if st.crossing is not None:
        zebra = (np.abs(d - st.crossing) < 2.0) & ((u % 1.0) < 0.5)
        lines |= zebra
    temp[lines & on_road] += paint
    cv.paint(r0, 0, np.ones(u.shape, bool), temp, label, d)


def _paint_wall(
    cv: _Canvas,
    cam: _Camera,
    u: float,
    d0: float,
    d1: float,
    height: float,
    thick: float,
    temp: float,
    label: int,
    window: float = 0.0,
    bay: float = 3.5,
) -> None:
    """A wall along the street at lateral ``u`` from distance d0 to d1 plus its end face at d0 (facing the camera).

    With ``window`` != 0 the faces carry a window grid (one window per ``bay`` metres, 3.2 m floors).
    """
    side = 1.0 if u > 0 else -1.0

    def windows(a: np.ndarray, b: np.ndarray, px_per_m: np.ndarray) -> np.ndarray:
        grid = ((a % bay) > 0.35 * bay) & ((b % 3.2) > 1.0) & ((b % 3.2) < 2.5) & (b > 1.5) & (b < height - 0.8)
        return np.where(grid, window * np.clip(px_per_m / 3.0, 0.0, 1.0), 0.0)

    xa, xb = cam.x(u, d1), cam.x(u, d0)
    g = cv.grid(min(xa, xb), 0.0, max(xa, xb), cam.ground_y(d0))
    if g is not None:
        r0, c0, yy, xx = g
        s = (xx - cam.vx) / u
        y_ground = cam.horizon + cam.height * s
        cov = (s > 0) & (yy < y_ground) & (yy >= y_ground - height * s)
        depth = cam.focal / np.maximum(s, 1e-6)
        tex = temp + windows(depth - d0, (y_ground - yy) / np.maximum(s, 1e-6), s)
        cv.paint(r0, c0, cov, tex, label, depth)
    s0 = cam.scale(d0)
    xa, xb = cam.x(u, d0), cam.x(u + side * thick, d0)
    g = cv.grid(min(xa, xb), cam.ground_y(d0) - height * s0, max(xa, xb), cam.ground_y(d0))
    if g is not None:
        r0, c0, yy, xx = g
        tex = temp + windows(np.abs(xx - xa) / s0, (cam.ground_y(d0) - yy) / s0, np.full(xx.shape, s0))
        cv.paint(r0, c0, np.ones((yy.shape[0], xx.shape[1]), bool), tex, label, d0)


# -------------------------------------------------------------------------------------------------- roadside


def _tree(cv: _Canvas, cam: _Camera, u: float, d: float, th: _Thermal, rng: np.random.Generator) -> None:
    b = _Brush(cv, cam, u, d)
    trunk, radius = rng.uniform(1.8, 3.0), rng.uniform(1.5, 3.0)
    b.segment((0, 0), (0, trunk + 0.5 * radius), 0.15, th.vegetation + rng.uniform(0.0, 2.0), VEGETATION)
    for _ in range(int(rng.integers(6, 11))):
        b.ellipse(
            rng.uniform(-0.9, 0.9) * radius,
            trunk + radius * rng.uniform(0.4, 1.4),
            radius * rng.uniform(0.35, 0.7),
            radius * rng.uniform(0.35, 0.6),
            th.vegetation + rng.uniform(-1.5, 1.5),
            VEGETATION,
        )


def _street_light(
    cv: _Canvas, cam: _Camera, u: float, d: float, side: int, th: _Thermal, rng: np.random.Generator
) -> None:
    b = _Brush(cv, cam, u, d)
    if rng.random() < 0.3:  # post-top lantern
        top = rng.uniform(3.5, 4.5)
        b.rect(-0.07, 0, 0.07, top, th.metal, POLE)
        b.ellipse(0, top + 0.2, 0.22, 0.25, th.luminaire, LAMP)
        return
    top, reach = rng.uniform(5.5, 7.5), -side * rng.uniform(1.2, 2.0)
    b.rect(-0.09, 0, 0.09, top, th.metal, POLE)
    b.segment((0, top), (reach, top + 0.3), 0.05, th.metal, POLE)
    b.ellipse(reach, top + 0.22, 0.4, 0.13, th.luminaire, LAMP)


def _traffic_light(
    cv: _Canvas, cam: _Camera, u: float, d: float, side: int, th: _Thermal, rng: np.random.Generator
) -> None:
    """Pole with a signal head, and on a mast arm over the road a second head; heads are M3FD Lamps."""
    b = _Brush(cv, cam, u, d)
    post = rng.uniform(2.6, 3.4)
    housing = th.metal + (rng.uniform(4.0, 8.0) if th.day else rng.uniform(3.0, 6.0))
    heads = [(0.0, post)]
    b.rect(-0.07, 0, 0.07, post, th.metal, POLE)
    if rng.random() < 0.6:
        mast, reach = rng.uniform(5.0, 6.0), -side * rng.uniform(3.0, 6.0)
        b.rect(-0.1, post, 0.1, mast, th.metal, POLE)
        b.segment((0, mast), (reach, mast), 0.07, th.metal, POLE)
        heads.append((reach, mast - 0.05))
    lit = int(rng.integers(0, 3))
    for hu, hv in heads:
        cv.begin(LAMP_ID)
        b.rect(hu - 0.2, hv - 1.0, hu + 0.2, hv, housing, LAMP)
        b.ellipse(hu, hv - 0.2 - 0.3 * lit, 0.11, 0.11, housing + rng.uniform(6.0, 14.0), LAMP)
        cv.end()


def _sign(cv: _Canvas, cam: _Camera, u: float, d: float, th: _Thermal, rng: np.random.Generator) -> None:
    b = _Brush(cv, cam, u, d)
    top = rng.uniform(2.2, 3.0)
    panel = th.metal + (rng.uniform(4.0, 10.0) if th.day else rng.uniform(-5.0, -2.0))
    b.rect(-0.04, 0, 0.04, top, th.metal, POLE)
    shape = rng.integers(0, 3)
    if shape == 0:
        b.rect(-0.35, top, 0.35, top + 0.7, panel, SIGN)
    elif shape == 1:
        b.ellipse(0, top + 0.35, 0.35, 0.35, panel, SIGN)
    else:
        b.polygon([(-0.4, top), (0.4, top), (0, top + 0.7)], panel, SIGN)


def _paint_roadside(cv: _Canvas, cam: _Camera, st: _Street, th: _Thermal, rng: np.random.Generator) -> None:
    for side, kind in zip((-1, 1), st.sides, strict=True):
        kerb = st.edge(side)
        outer = kerb + side * st.sidewalk
        if kind == "buildings":
            face, d = outer + side * rng.uniform(0.0, 2.0), rng.uniform(2.0, 15.0)
            while d < 220.0:
                length = rng.uniform(10.0, 40.0)
                _paint_wall(
                    cv,
                    cam,
                    face,
                    d,
                    d + length,
                    rng.uniform(6.0, 28.0),
                    30.0,
                    th.building + rng.uniform(-2.5, 2.5),
                    BUILDING,
                    th.window,
                    rng.uniform(2.5, 4.5),
                )
                d += length + (rng.uniform(3.0, 12.0) if rng.random() < 0.35 else 0.0)
        elif kind == "trees" and rng.random() < 0.5:
            _paint_wall(
                cv,
                cam,
                outer + side * 0.3,
                rng.uniform(3.0, 10.0),
                200.0,
                rng.uniform(0.8, 1.6),
                1.0,
                th.vegetation,
                VEGETATION,
            )
        elif kind == "open" or rng.random() < 0.3:
            barrier = kerb + side * 0.3 if kind == "open" else outer + side * 0.2
            _paint_wall(
                cv, cam, barrier, rng.uniform(3.0, 10.0), 200.0, rng.uniform(0.6, 1.0), 0.3, th.metal, UNLABELED
            )
        if kind != "open" or rng.random() < 0.4:
            d = rng.uniform(5.0, 15.0)
            while d < 150.0:
                _tree(cv, cam, outer - side * rng.uniform(0.3, 1.0), d, th, rng)
                d += rng.uniform(6.0, 20.0) if kind == "trees" else rng.uniform(12.0, 40.0)
        if rng.random() < 0.7:
            d = rng.uniform(8.0, 25.0)
            while d < 150.0:
                _street_light(cv, cam, kerb + side * 0.5, d, side, th, rng)
                d += rng.uniform(20.0, 35.0)
        if rng.random() < 0.4:
            b = _Brush(cv, cam, outer - side * 0.3, rng.uniform(10.0, 60.0))
            top = rng.uniform(8.0, 11.0)
            b.rect(-0.12, 0, 0.12, top, th.metal, POLE)
            b.rect(-0.9, top - 0.6, 0.9, top - 0.5, th.metal, POLE)
        for _ in range(int(rng.integers(0, 3))):
            _sign(cv, cam, kerb + side * 0.4, rng.uniform(6.0, 60.0), th, rng)
        if st.crossing is not None:
            _traffic_light(cv, cam, kerb + side * 0.6, st.crossing + 2.5, side, th, rng)


# --------------------------------------------------------------------------------------------------- traffic


@dataclass(frozen=True)
class _Vehicle:
    body: float
    wheel: float
    engine: float
    exhaust: float
    glass: float


def _vehicle_temps(th: _Thermal, rng: np.random.Generator) -> _Vehicle:
    body = max(th.ambient, th.road) + rng.uniform(2.0, 7.0)
    return _Vehicle(
        body,
        th.ambient + rng.uniform(18.0, 32.0),
        th.ambient + rng.uniform(12.0, 24.0),
        th.ambient + rng.uniform(30.0, 50.0),
        th.ambient - rng.uniform(2.0, 7.0),
    )


def _person(b: _Brush, rng: np.random.Generator, label: int = PERSON, height: float | None = None) -> None:
    k = height if height is not None else rng.uniform(1.55, 1.9) / 1.75
    w = k**0.7
    skin, cloth = rng.uniform(33.0, 35.5), rng.uniform(28.0, 32.0)
    legs = cloth - rng.uniform(0.0, 2.0)
    stride = rng.uniform(-0.3, 0.3) if rng.random() < 0.6 else 0.0
    for sgn in (-1, 1):
        b.segment((sgn * 0.08 * w, 0.9 * k), (sgn * (0.1 * w + stride / 2), 0.06 * k), 0.075 * w, legs, label)
        b.segment(
            (sgn * 0.2 * w, 1.4 * k), (sgn * (0.24 * w + abs(stride) * 0.25), 0.84 * k), 0.05 * w, cloth + 1.0, label
        )
        b.ellipse(sgn * (0.24 * w + abs(stride) * 0.25), 0.82 * k, 0.05 * w, 0.06 * k, skin - 1.0, label)
    b.polygon([(-0.17 * w, 0.86 * k), (0.17 * w, 0.86 * k), (0.22 * w, 1.44 * k), (-0.22 * w, 1.44 * k)], cloth, label)
    b.rect(-0.05 * w, 1.42 * k, 0.05 * w, 1.52 * k, skin, label)
    b.ellipse(0, 1.63 * k, 0.095 * w, 0.115 * k, skin, label)


def _car_end(b: _Brush, v: _Vehicle, front: bool, rng: np.random.Generator) -> None:
    half, top = rng.uniform(0.85, 0.95), rng.uniform(1.4, 1.6)
    for sgn in (-1, 1):
        b.rect(sgn * (half - 0.28), 0, sgn * (half - 0.02), 0.6, v.wheel, CAR)
    b.rect(-half + 0.25, 0.12, half - 0.25, 0.35, v.exhaust - 10.0, CAR)  # hot underbody
    b.rect(-half, 0.3, half, 0.95, v.body, CAR)
    b.polygon([(-half + 0.08, 0.95), (half - 0.08, 0.95), (half - 0.3, top), (-half + 0.3, top)], v.body - 1.0, CAR)
    b.polygon(
        [(-half + 0.2, 1.0), (half - 0.2, 1.0), (half - 0.36, top - 0.08), (-half + 0.36, top - 0.08)], v.glass, CAR
    )
    if front:
        b.rect(-0.55, 0.35, 0.55, 0.75, v.engine, CAR)
        for sgn in (-1, 1):
            b.ellipse(sgn * (half - 0.22), 0.72, 0.14, 0.07, v.engine - 4.0, CAR)
    else:
        b.ellipse(-0.5, 0.3, 0.08, 0.06, v.exhaust, CAR)
        for sgn in (-1, 1):
            b.rect(sgn * (half - 0.3), 0.78, sgn * (half - 0.04), 0.9, v.body + 3.0, CAR)


def _car_side(b: _Brush, v: _Vehicle, rng: np.random.Generator) -> None:
    half, top = rng.uniform(2.1, 2.4), rng.uniform(1.4, 1.6)
    b.rect(-half + 0.6, 0.15, half - 0.6, 0.4, v.exhaust - 10.0, CAR)
    b.rect(-half, 0.32, half, 0.95, v.body, CAR)
    b.rect(half - 1.1, 0.45, half - 0.05, 0.9, v.engine, CAR)  # engine bay (front = +u)
    b.polygon([(-half + 0.5, 0.95), (half - 1.2, 0.95), (half - 1.8, top), (-half + 1.2, top)], v.body - 1.0, CAR)
    b.polygon(
        [(-half + 0.65, 1.0), (half - 1.35, 1.0), (half - 1.85, top - 0.08), (-half + 1.3, top - 0.08)], v.glass, CAR
    )
    b.rect(-0.3, 1.0, -0.2, top - 0.05, v.body - 1.0, CAR)  # B pillar
    for cu in (-half + 0.75, half - 0.75):
        b.ellipse(cu, 0.32, 0.32, 0.32, v.wheel, CAR)
        b.ellipse(cu, 0.32, 0.14, 0.14, v.wheel - 8.0, CAR)


def _bus_end(b: _Brush, v: _Vehicle, front: bool) -> None:
    for sgn in (-1, 1):
        b.rect(sgn * 0.9, 0, sgn * 1.2, 0.95, v.wheel, BUS)
    b.rect(-1.25, 0.3, 1.25, 3.1, v.body, BUS)
    if front:
        b.rect(-1.1, 1.1, 1.1, 2.75, v.glass, BUS)
        b.rect(-0.8, 2.8, 0.8, 3.0, v.body + 4.0, BUS)
        b.rect(-1.0, 0.35, 1.0, 0.7, v.engine - 5.0, BUS)
    else:
        b.rect(-1.05, 1.9, 1.05, 2.85, v.glass, BUS)
        b.rect(-0.9, 0.45, 0.9, 1.25, v.engine, BUS)
        b.ellipse(0.8, 0.35, 0.1, 0.08, v.exhaust, BUS)


def _bus_side(b: _Brush, v: _Vehicle) -> None:
    b.rect(-5.5, 0.15, 5.5, 0.4, v.exhaust - 10.0, BUS)
    b.rect(-6.0, 0.35, 6.0, 3.1, v.body, BUS)
    for i in range(7):
        b.rect(-5.3 + 1.5 * i, 1.35, -4.1 + 1.5 * i, 2.6, v.glass, BUS)
    b.rect(5.55, 1.1, 5.95, 2.85, v.glass, BUS)
    b.rect(-6.0, 0.45, -4.6, 1.3, v.engine, BUS)
    for cu in (-3.6, 3.4):
        b.ellipse(cu, 0.5, 0.5, 0.5, v.wheel, BUS)
        b.ellipse(cu, 0.5, 0.22, 0.22, v.wheel - 8.0, BUS)


def _truck_end(b: _Brush, v: _Vehicle, front: bool, cargo: float) -> None:
    for sgn in (-1, 1):
        b.rect(sgn * 0.75, 0, sgn * 1.2, 1.0, v.wheel, TRUCK)
    b.rect(-1.2, 0.45, 1.2, 1.0, v.exhaust - 12.0, TRUCK)
    if front:
        b.rect(-1.25, 3.0, 1.25, 3.7, cargo, TRUCK)
        b.rect(-1.2, 0.5, 1.2, 3.0, v.body, TRUCK)
        b.rect(-1.05, 1.8, 1.05, 2.8, v.glass, TRUCK)
        b.rect(-0.8, 0.6, 0.8, 1.5, v.engine, TRUCK)
    else:
        b.rect(-1.25, 1.0, 1.25, 3.7, cargo, TRUCK)
        b.rect(-0.03, 1.05, 0.03, 3.6, cargo - 1.5, TRUCK)
        b.rect(-1.1, 0.45, 1.1, 0.55, v.body, TRUCK)
        b.ellipse(-0.9, 0.5, 0.09, 0.07, v.exhaust, TRUCK)


def _truck_side(b: _Brush, v: _Vehicle, cargo: float) -> None:
    b.rect(-4.5, 0.5, 2.3, 1.0, v.exhaust - 12.0, TRUCK)
    b.rect(-4.5, 1.0, 2.1, 3.7, cargo, TRUCK)
    b.rect(2.3, 0.5, 4.5, 3.0, v.body, TRUCK)
    b.polygon([(3.3, 1.9), (4.3, 1.9), (4.4, 2.8), (3.3, 2.8)], v.glass, TRUCK)
    b.rect(2.4, 0.5, 4.4, 1.4, v.engine, TRUCK)
    for cu in (-3.5, -2.4, 3.4):
        b.ellipse(cu, 0.5, 0.5, 0.5, v.wheel, TRUCK)
        b.ellipse(cu, 0.5, 0.2, 0.2, v.wheel - 8.0, TRUCK)


def _motorcycle(b: _Brush, v: _Vehicle, side_view: bool, rng: np.random.Generator) -> None:
    """Motorcycle with rider, all labelled motorcycle; side or end view."""
    cloth, helmet = rng.uniform(27.0, 31.0), v.glass + rng.uniform(6.0, 10.0)
    if side_view:
        for cu in (-0.72, 0.72):
            b.ellipse(cu, 0.32, 0.32, 0.32, v.wheel - 10.0, MOTORCYCLE)
            b.ellipse(cu, 0.32, 0.32, 0.32, v.wheel, MOTORCYCLE, ring=0.09)
        b.segment((-0.2, 0.3), (-0.85, 0.38), 0.05, v.exhaust, MOTORCYCLE)
        b.segment((-0.55, 0.72), (0.5, 0.82), 0.12, v.body, MOTORCYCLE)
        b.ellipse(0.0, 0.45, 0.3, 0.2, v.engine + 8.0, MOTORCYCLE)
        b.segment((0.5, 0.8), (0.72, 0.32), 0.04, v.body, MOTORCYCLE)
        b.segment((-0.25, 0.9), (0.12, 0.78), 0.08, cloth, MOTORCYCLE)
        b.segment((0.12, 0.78), (0.08, 0.38), 0.06, cloth, MOTORCYCLE)
        b.segment((-0.25, 0.9), (-0.05, 1.4), 0.16, cloth, MOTORCYCLE)
        b.segment((-0.05, 1.35), (0.45, 1.02), 0.05, cloth, MOTORCYCLE)
        b.ellipse(0.0, 1.6, 0.14, 0.14, helmet, MOTORCYCLE)
        return
    b.rect(-0.06, 0, 0.06, 0.65, v.wheel - 5.0, MOTORCYCLE)
    b.rect(-0.22, 0.3, 0.22, 0.62, v.engine + 8.0, MOTORCYCLE)
    for sgn in (-1, 1):
        b.segment((sgn * 0.21, 0.4), (sgn * 0.17, 0.88), 0.07, cloth, MOTORCYCLE)
    b.rect(-0.38, 1.0, 0.38, 1.05, v.body, MOTORCYCLE)
    b.polygon([(-0.2, 0.85), (0.2, 0.85), (0.23, 1.42), (-0.23, 1.42)], cloth, MOTORCYCLE)
    b.ellipse(0, 1.58, 0.13, 0.14, helmet, MOTORCYCLE)
    b.ellipse(0.12, 0.45, 0.07, 0.05, v.exhaust, MOTORCYCLE)


def _cyclist(cv: _Canvas, cam: _Camera, u: float, d: float, th: _Thermal, rng: np.random.Generator) -> None:
    """Bicycle (FMB bicycle, no box) with its rider (person, People box), side view."""
    b = _Brush(cv, cam, u, d, facing=float(rng.choice([-1.0, 1.0])))
    frame = th.metal + 1.0
    for cu in (-0.55, 0.55):
        b.ellipse(cu, 0.34, 0.34, 0.34, frame, BICYCLE, ring=0.05)
    for a, c in (
        ((-0.55, 0.34), (-0.1, 0.34)),
        ((-0.1, 0.34), (-0.2, 0.85)),
        ((-0.2, 0.85), (0.4, 0.85)),
        ((-0.1, 0.34), (0.4, 0.85)),
        ((-0.55, 0.34), (-0.2, 0.85)),
        ((0.4, 0.85), (0.55, 0.34)),
        ((0.4, 0.85), (0.35, 1.05)),
    ):
        b.segment(a, c, 0.025, frame, BICYCLE)
    skin, cloth = rng.uniform(33.0, 35.5), rng.uniform(28.0, 32.0)
    cv.begin(PEOPLE_ID)
    b.segment((-0.2, 0.95), (0.12, 0.7), 0.08, cloth - 1.0, PERSON)
    b.segment((0.12, 0.7), (-0.05, 0.3), 0.06, cloth - 1.0, PERSON)
    b.segment((-0.2, 0.95), (0.08, 1.45), 0.16, cloth, PERSON)
    b.segment((0.08, 1.4), (0.35, 1.05), 0.05, cloth + 1.0, PERSON)
    b.ellipse(0.14, 1.64, 0.1, 0.12, skin, PERSON)
    cv.end()


def _paint_traffic(cv: _Canvas, cam: _Camera, st: _Street, th: _Thermal, rng: np.random.Generator) -> None:
    _paint_lane_vehicles(cv, cam, st, th, rng)
    if st.crossing is not None and rng.random() < 0.6:  # a vehicle crossing the intersection
        _paint_crossing_vehicle(cv, cam, st, th, rng)
    _paint_people(cv, cam, st, th, rng)


def _paint_lane_vehicles(cv: _Canvas, cam: _Camera, st: _Street, th: _Thermal, rng: np.random.Generator) -> None:
    """Cars, buses, trucks and motorcycles in the lanes, seen from the front or the back, none overlapping."""
    occupied: list[tuple[int, float, float]] = []

    def lane_slot(length: float) -> tuple[int, float] | None:
        for _ in range(10):
            lane, d = int(rng.integers(0, st.lanes)), float(np.exp(rng.uniform(np.log(7.0), np.log(90.0))))
            if all(lane != ol or abs(d - od) > 0.5 * (length + olen) + 2.0 for ol, od, olen in occupied):
                occupied.append((lane, d, length))
                return lane, d
        return None

    kinds = ["car"] * int(rng.integers(1, 6))
    kinds += ["bus"] * int(rng.random() < 0.3) + ["truck"] * int(rng.random() < 0.3)
    kinds += ["motorcycle"] * int(rng.random() < 0.35)
    for kind in kinds:
        length = {"car": 4.5, "bus": 12.0, "truck": 9.0, "motorcycle": 2.0}[kind]
        slot = lane_slot(length)
        if slot is None:
            continue
        lane, d = slot
        front = st.lane_centre(lane) < 0 and lane < st.lanes // 2  # oncoming lanes face the camera
        b = _Brush(cv, cam, st.lane_centre(lane) + rng.uniform(-0.4, 0.4), d)
        v = _vehicle_temps(th, rng)
        cv.begin({"car": CAR_ID, "bus": BUS_ID, "truck": TRUCK_ID, "motorcycle": MOTORCYCLE_ID}[kind])
        if kind == "car":
            _car_end(b, v, front, rng)
        elif kind == "bus":
            _bus_end(b, v, front)
        elif kind == "truck":
            _truck_end(b, v, front, th.ambient + rng.uniform(1.0, 5.0))
        else:
            _motorcycle(b, v, False, rng)
        cv.end()


def _paint_crossing_vehicle(cv: _Canvas, cam: _Camera, st: _Street, th: _Thermal, rng: np.random.Generator) -> None:
    """One vehicle crossing the intersection, seen from the side."""
    kind = rng.choice(["car", "car", "bus", "truck", "motorcycle"])
    b = _Brush(
        cv,
        cam,
        rng.uniform(st.left, st.right),
        st.crossing + rng.uniform(4.0, 8.0),
        facing=float(rng.choice([-1.0, 1.0])),
    )
    v = _vehicle_temps(th, rng)
    cv.begin({"car": CAR_ID, "bus": BUS_ID, "truck": TRUCK_ID, "motorcycle": MOTORCYCLE_ID}[str(kind)])
    if kind == "car":
        _car_side(b, v, rng)
    elif kind == "bus":
        _bus_side(b, v)
    elif kind == "truck":
        _truck_side(b, v, th.ambient + rng.uniform(1.0, 5.0))
    else:
        _motorcycle(b, v, True, rng)
    cv.end()


def _paint_people(cv: _Canvas, cam: _Camera, st: _Street, th: _Thermal, rng: np.random.Generator) -> None:
    """Pedestrians on the sidewalks and the zebra crossing, sometimes a cyclist."""
    for _ in range(int(rng.integers(0, 7))):  # pedestrians on the sidewalks
        side = -1 if rng.random() < 0.5 else 1
        u = st.edge(side) + side * rng.uniform(0.3, st.sidewalk - 0.3)
        cv.begin(PEOPLE_ID)
        _person(_Brush(cv, cam, u, float(np.exp(rng.uniform(np.log(5.0), np.log(70.0))))), rng)
        cv.end()
    if st.crossing is not None:  # pedestrians on the zebra crossing
        for _ in range(int(rng.integers(0, 4))):
            cv.begin(PEOPLE_ID)
            _person(_Brush(cv, cam, rng.uniform(st.left, st.right), st.crossing + rng.uniform(-1.5, 1.5)), rng)
            cv.end()
    if rng.random() < 0.25:
        side = -1 if rng.random() < 0.5 else 1
        _cyclist(cv, cam, st.edge(side) - side * 0.8, float(np.exp(rng.uniform(np.log(6.0), np.log(40.0)))), th, rng)


# ---------------------------------------------------------------------------------------------------- sensor


def _add_texture(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    coarse = _smooth_noise(rng, cv.h, cv.w, cv.h / 8)
    fine = _gaussian_blur(rng.standard_normal((cv.h, cv.w)).astype(np.float32), 0.7) * 2.0
    amp = _TEXTURE[cv.label]
    return cv.temp + amp[..., 0] * coarse + amp[..., 1] * fine


def _sensor(temp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Optics PSF, vignetting, fixed-pattern and temporal noise, percentile AGC to uint8."""
    h, w = temp.shape
    sig = _gaussian_blur(temp.astype(np.float32), rng.uniform(0.6, 1.0))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    sig -= rng.uniform(0.5, 2.5) * r2 / 2.0
    sig += rng.normal(0.0, rng.uniform(0.04, 0.15), (1, w)).astype(np.float32)
    sig += rng.normal(0.0, rng.uniform(0.02, 0.06), (h, 1)).astype(np.float32)
    sig += rng.normal(0.0, rng.uniform(0.08, 0.2), (h, w)).astype(np.float32)
    lo, hi = np.percentile(sig, [0.5, 99.8])
    norm = np.clip((sig - lo) / max(hi - lo, 1e-3), 0.0, 1.0)
    bins = (norm * 255).astype(np.int64)
    hist = np.bincount(bins.ravel(), minlength=256).astype(np.float64)
    cdf = np.cumsum(np.minimum(hist, hist.mean() * rng.uniform(2.0, 5.0)))  # plateau equalisation
    equalised = (cdf / cdf[-1])[bins]
    mix = rng.uniform(0.4, 0.7)
    out = 6.0 + 243.0 * (mix * equalised + (1.0 - mix) * norm)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def render_scene(seed: int, height: int = 240, width: int = 320) -> SynthScene:
    """Render one deterministic synthetic thermal street frame with M3FD boxes and an FMB mask."""
    rng = np.random.default_rng(seed)
    cam = _sample_camera(rng, height, width)
    st = _sample_street(rng)
    th = _sample_thermal(rng)
    cv = _Canvas(height, width)
    _paint_sky(cv, cam, th, rng)
    _paint_skyline(cv, cam, th, rng)
    _paint_ground(cv, cam, st, th, rng)
    _paint_roadside(cv, cam, st, th, rng)
    _paint_traffic(cv, cam, st, th, rng)
    image = _sensor(_add_texture(cv, rng), rng)
    return SynthScene(image=image, boxes=cv.boxes(), mask=cv.label.copy())


def preview(scene: SynthScene) -> np.ndarray:
    """RGB uint8 (H, 2W): the frame with boxes drawn (colour = FMB colour of the class) beside the coloured mask."""
    img = np.repeat(scene.image[..., None], 3, axis=2)
    for cls, x1, y1, x2, y2 in scene.boxes.astype(int):
        colour = FMB_PALETTE[M3FD_TO_FMB[cls]] // 2 + 127
        img[y1, x1:x2] = img[y2 - 1, x1:x2] = colour
        img[y1:y2, x1] = img[y1:y2, x2 - 1] = colour
    return np.concatenate([img, FMB_PALETTE[scene.mask]], axis=1)


@register_kind("synthir")
class SynthIRDataset(Dataset):
    """``synthir``: ``count`` scenes rendered from seeds ``first_seed .. first_seed + count - 1``.

    HR = the rendered 8-bit frame (single channel); LR = bicubic x``scale`` of it. Boxes use M3FD's
    class ids, masks FMB's ids with 0 (unlabeled) mapped to the ignore value unless
    ``ignore_unlabeled`` is false, exactly like the ``fmb`` kind.
    """

    label_classes = MappingProxyType({LABEL_BOXES: M3FD_CLASSES, LABEL_MASK: FMB_CLASSES})

    def __init__(
        self,
        name: str,
        *,
        first_seed: int = 0,
        count: int = 16,
        height: int = 240,
        width: int = 320,
        ignore_unlabeled: bool = True,
        **common,
    ):
        super().__init__(name, **common)
        if count < 1 or height < self.scale or width < self.scale:
            raise DataError(f"data set {name!r}: need count >= 1 and a frame at least {self.scale}x{self.scale}")
        self.first_seed, self.count, self.height, self.width = first_seed, count, height, width
        self.ignore_unlabeled = ignore_unlabeled

    def ids(self) -> list[str]:
        return [f"synthir_{seed:06d}" for seed in range(self.first_seed, self.first_seed + self.count)]

    def load(self, sample_id: str, labels: bool = True) -> Sample:
        seed = int(sample_id.rsplit("_", 1)[1])
        scene = render_scene(seed, self.height, self.width)
        mask = scene.mask.copy()
        if self.ignore_unlabeled:
            mask[mask == 0] = IGNORE_INDEX
        hr = scene.image.astype(np.float32)[..., None] / 255.0
        channels = 3 if self.channels == 3 else 1
        hr = np.repeat(hr, channels, axis=2)
        return self.make_sample(
            sample_id,
            hr,
            boxes=scene.boxes.copy() if labels else None,
            mask=mask if labels else None,
            source=f"synthir:{seed}",
            fingerprint=f"synthir-v{GENERATOR_VERSION}-{seed}-{self.height}x{self.width}",
        )


if __name__ == "__main__":  # python -m downstream.datasets.synthir [out_dir]: writes the docs previews
    import sys
    from pathlib import Path

    from PIL import Image

    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        Image.fromarray(preview(render_scene(i))).save(out_dir / f"synthir_preview_{i}.png", optimize=True)
