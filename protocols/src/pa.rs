//! Passive Authentication (ICAO 9303-11 §5.1): SOD, DS signature, CSCA chain, hashes.
