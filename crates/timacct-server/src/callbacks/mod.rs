//! Callbacks to the app (State.StateChange when users log in and out, Alert.RequestOverLimit
//! near a rate limit), signed as Tencent signs them, from a bounded queue per app so that a
//! slow receiver never delays an API call.
//!
//! Not built yet; this is where the sender and its queue go.
