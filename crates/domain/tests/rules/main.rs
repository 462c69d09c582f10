//! Given/when/then tests for every domain rule and every refused transition (one test binary).

mod certificates;
mod credit;
mod credit_evidence;
mod events;
mod followups;
mod framework;
mod malformed_input;
mod order_lifecycle;
mod order_phases;
mod order_refusals;
mod worker;
