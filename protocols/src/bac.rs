//! Basic Access Control (ICAO 9303-11 §4.3).
