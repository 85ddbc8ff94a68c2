//! The eMRTD card application (ICAO 9303).
