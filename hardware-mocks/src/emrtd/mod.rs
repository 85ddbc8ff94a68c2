//! Virtual eMRTD chips.
