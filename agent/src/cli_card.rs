//! `eid-agent card ...`: Citizen Card commands.
