//! LDS files of ICAO 9303-10 (EF.COM, data groups, SecurityInfos).
