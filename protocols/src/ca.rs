//! Chip Authentication v1 (ICAO 9303-11 §6.2, BSI TR-03110).
