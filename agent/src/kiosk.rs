//! Kiosk mode (owned by the kiosk helper; stub).
