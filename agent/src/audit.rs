//! The kiosk's audit log (owned by the audit helper; stub).
