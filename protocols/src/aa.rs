//! Active Authentication (ICAO 9303-11 §6.1): terminal check and chip-side signing.
