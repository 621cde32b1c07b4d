//! Wire types of the Delivery Service API.
