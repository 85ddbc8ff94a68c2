//! Card photos (JPEG, JPEG 2000) converted to PNG for display.
