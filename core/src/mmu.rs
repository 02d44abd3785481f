//! Software MMU (to be written).
