//! Wire types of the Authentication Service API.
