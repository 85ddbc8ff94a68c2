//! Generated test PKIs (Citizen Card hierarchy, CSCA/DS) and CMS signing.
