//! placeholder until the fake server lands
