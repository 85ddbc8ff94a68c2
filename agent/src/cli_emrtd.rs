//! `eid-agent emrtd ...`: eMRTD commands.
