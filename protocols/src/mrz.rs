//! Machine readable zone (ICAO 9303-3/4/5): parsing and check digits.
