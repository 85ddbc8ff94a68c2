//! PACE with generic mapping and PACE-CAM (ICAO 9303-11 §4.4).
