//! Key derivation for BAC, PACE and CA (ICAO 9303-11 §9.7.1).
