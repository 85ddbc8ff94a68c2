//! Secure messaging (ICAO 9303-11 §9.8): 3DES and AES, terminal and chip side.
