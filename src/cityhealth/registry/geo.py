"""Geometry of the medical e-map, pure and database-free: distances on the sphere, the box a search circle fits
in, and the GCJ-02 datum shift of Chinese map services.

Distance. The great-circle distance on a sphere of the mean Earth radius, by Vincenty's formula for the sphere
(atan2 of the central angle's sine and cosine), which keeps its digits from a millimetre to the antipode: the
haversine loses about a decimetre near the antipode (it takes the root of 1 - a with a next to 1), the law of
cosines its digits below a few metres. The sphere, not the WGS-84 ellipsoid: the search box below is derived on the same
sphere, so "every facility within the radius is in the box" is a theorem rather than a hope; the sphere's length
of a path differs from the ellipsoid's by at most about 0.5 %, which reorders two facilities only when their
distances already differ by less than that (docs/decisions/medical-emap.md).

GCJ-02 (国测局坐标, "Mars coordinates"). Maps served in mainland China (Amap, Tencent) show WGS-84 positions shifted
by an obfuscating function of GB/T law; the function circulating publicly (and matched to the services' tiles
by many independent implementations) is what `wgs84_to_gcj02` computes: a polynomial-plus-sine offset in metres,
turned into degrees on the Krasovsky 1940 ellipsoid. It applies only inside a rectangle roughly around China; the
public implementations leave points outside it unchanged, and so does this one. There is no closed-form
inverse: `gcj02_to_wgs84` solves wgs84_to_gcj02(w) = g by fixed-point iteration, which converges because the
shift varies slowly (its derivative is about 1e-5 per degree).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# IUGG mean Earth radius R1 = (2a + b) / 3 of WGS-84, in metres.
EARTH_RADIUS_M = 6_371_008.8
# Half the equator on that sphere: no two points are farther apart than this.
MAX_DISTANCE_M = math.pi * EARTH_RADIUS_M
MIN_LATITUDE, MAX_LATITUDE = -90.0, 90.0
MIN_LONGITUDE, MAX_LONGITUDE = -180.0, 180.0

# The box is widened by this much (radians, about 6 mm on the ground) and by this relative amount, more than the
# rounding of the distance formula and of the box's own trigonometry can ever take back.
_SLACK_RAD = 1e-9
_SLACK_REL = 1e-9


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres between two points given in degrees (Vincenty's formula for the
    sphere: the central angle as atan2 of its sine and cosine, both computed directly)."""
    return distances_from(lat1, lon1)(lat2, lon2)


def distances_from(lat: float, lon: float) -> Callable[[float, float], float]:
    """great_circle_m from a fixed point, its trigonometry done once (a search measures thousands from it)."""
    phi1, lambda1 = math.radians(lat), math.radians(lon)
    sin_phi1, cos_phi1 = math.sin(phi1), math.cos(phi1)
    sin, cos, radians, atan2, hypot = math.sin, math.cos, math.radians, math.atan2, math.hypot

    def distance_m(lat2: float, lon2: float) -> float:
        phi2, dlambda = radians(lat2), radians(lon2) - lambda1
        sin_phi2, cos_phi2, cos_dlambda = sin(phi2), cos(phi2), cos(dlambda)
        across = cos_phi2 * sin(dlambda)
        along = cos_phi1 * sin_phi2 - sin_phi1 * cos_phi2 * cos_dlambda
        return EARTH_RADIUS_M * atan2(hypot(across, along), sin_phi1 * sin_phi2 + cos_phi1 * cos_phi2 * cos_dlambda)

    return distance_m


@dataclass(frozen=True)
class BoundingBox:
    """Latitude band and longitude ranges (one, or two where the box crosses the 180th meridian) holding every
    point within a search circle; `longitudes` is empty when every longitude is in (the circle holds a pole)."""

    min_lat: float
    max_lat: float
    longitudes: tuple[tuple[float, float], ...]

    def contains(self, lat: float, lon: float) -> bool:
        if not self.min_lat <= lat <= self.max_lat:
            return False
        return not self.longitudes or any(low <= lon <= high for low, high in self.longitudes)


def bounding_box(lat: float, lon: float, radius_m: float) -> BoundingBox:
    """The smallest latitude/longitude box (on the sphere) around the circle of `radius_m` about (lat, lon).

    A point within angular distance d of the centre has a latitude within d of the centre's: a meridian arc is
    never longer than the great circle between its ends. If the band reaches a pole, the circle contains the pole
    and so every longitude. Otherwise the widest longitude the circle reaches is asin(sin d / cos lat), where a
    meridian touches the circle (J. P. Matuschek, "Finding points within a distance of a latitude/longitude
    using bounding coordinates"); then sin d < cos lat, so the asin is defined.
    """
    d = radius_m / EARTH_RADIUS_M * (1 + _SLACK_REL) + _SLACK_RAD
    phi = math.radians(lat)
    low_phi, high_phi = phi - d, phi + d
    if d >= math.pi or low_phi <= -math.pi / 2 or high_phi >= math.pi / 2:
        return BoundingBox(max(MIN_LATITUDE, math.degrees(low_phi)), min(MAX_LATITUDE, math.degrees(high_phi)), ())
    ratio = math.sin(d) / math.cos(phi)
    if ratio >= 1:  # only by rounding, next to a pole: take every longitude rather than trust the asin
        return BoundingBox(math.degrees(low_phi), math.degrees(high_phi), ())
    half_width = math.degrees(math.asin(ratio)) * (1 + _SLACK_REL) + math.degrees(_SLACK_RAD)
    west, east = lon - half_width, lon + half_width
    band = (math.degrees(low_phi), math.degrees(high_phi))
    if half_width >= 180:
        return BoundingBox(*band, ())
    if west < MIN_LONGITUDE:  # across the 180th meridian on the west side
        return BoundingBox(*band, ((west + 360, MAX_LONGITUDE), (MIN_LONGITUDE, east)))
    if east > MAX_LONGITUDE:  # across it on the east side
        return BoundingBox(*band, ((west, MAX_LONGITUDE), (MIN_LONGITUDE, east - 360)))
    return BoundingBox(*band, ((west, east),))


# --- GCJ-02 -------------------------------------------------------------------------------------------------

# The Krasovsky 1940 ellipsoid the published shift is expressed on: semi-major axis (m), first eccentricity².
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_E2 = 0.00669342162296594323
# The rectangle inside which the public implementations apply the shift (degrees).
_GCJ_LON = (72.004, 137.8347)
_GCJ_LAT = (0.8293, 55.8271)
_INVERSE_TOLERANCE_DEG = 1e-10  # about 0.01 mm
_INVERSE_MAX_STEPS = 50


def in_gcj02_region(lat: float, lon: float) -> bool:
    """Whether the GCJ-02 shift applies at this point (the published rectangle around China)."""
    return _GCJ_LON[0] <= lon <= _GCJ_LON[1] and _GCJ_LAT[0] <= lat <= _GCJ_LAT[1]


def _waves(t: float, period_short: float, period_long: float, amp_short: float, amp_long: float) -> float:
    return (amp_short * math.sin(t * math.pi / period_short) + amp_long * math.sin(t * math.pi / period_long)) * 2 / 3


def _shift_m(lat: float, lon: float) -> tuple[float, float]:
    """The published offset, in metres northward and eastward, about the origin (35°N, 105°E)."""
    x, y = lon - 105.0, lat - 35.0
    ripple = _waves(x, 1 / 6, 1 / 2, 20.0, 20.0)
    north = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x)) + ripple
             + _waves(y, 1.0, 3.0, 20.0, 40.0) + _waves(y, 12.0, 30.0, 160.0, 320.0))
    east = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)) + ripple
            + _waves(x, 1.0, 3.0, 20.0, 40.0) + _waves(x, 12.0, 30.0, 150.0, 300.0))
    return north, east


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """The GCJ-02 coordinates (lat, lon) a Chinese map service shows for a WGS-84 position."""
    if not in_gcj02_region(lat, lon):
        return lat, lon
    north, east = _shift_m(lat, lon)
    phi = math.radians(lat)
    w = 1 - _KRASOVSKY_E2 * math.sin(phi) ** 2
    meridian_radius = _KRASOVSKY_A * (1 - _KRASOVSKY_E2) / (w * math.sqrt(w))  # metres per radian of latitude
    parallel_radius = _KRASOVSKY_A / math.sqrt(w) * math.cos(phi)  # metres per radian of longitude
    return lat + math.degrees(north / meridian_radius), lon + math.degrees(east / parallel_radius)


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The WGS-84 position whose GCJ-02 coordinates are (lat, lon): the forward shift inverted by iteration,
    to within 1e-10 degrees (about 0.01 mm) wherever the shift is continuous."""
    if not in_gcj02_region(lat, lon):
        return lat, lon
    guess_lat, guess_lon = lat, lon
    for _ in range(_INVERSE_MAX_STEPS):
        shown_lat, shown_lon = wgs84_to_gcj02(guess_lat, guess_lon)
        error_lat, error_lon = shown_lat - lat, shown_lon - lon
        if abs(error_lat) < _INVERSE_TOLERANCE_DEG and abs(error_lon) < _INVERSE_TOLERANCE_DEG:
            break
        guess_lat, guess_lon = guess_lat - error_lat, guess_lon - error_lon
    return guess_lat, guess_lon
