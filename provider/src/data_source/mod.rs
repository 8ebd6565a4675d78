//! Data sources.

pub mod ami;
pub mod spot_price;
