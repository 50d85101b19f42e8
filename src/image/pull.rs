//! image pull: manifest -> config -> layers, in parallel, streamed, verified and resumable.
