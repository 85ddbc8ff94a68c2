//! The Portuguese Citizen Card application (pteid): CC1 and CC2.
