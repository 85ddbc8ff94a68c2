//! Virtual Portuguese Citizen Cards (CC1, CC2).
