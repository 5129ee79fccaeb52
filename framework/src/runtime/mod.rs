//! The batch runtime: workers pinned to cores, each running its graph replica.
