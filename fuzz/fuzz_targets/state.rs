//! state.json bytes -> State -> what `state` and `list` print, for every
//! status (status itself needs /proc) -> state.json again. Re-encoding a
//! decoded state must be stable: a save/load cycle loses nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runway::container::state::{validate_id, State, Status};

fuzz_target!(|data: &[u8]| {
    let Ok(st) = serde_json::from_slice::<State>(data) else {
        return;
    };
    let _ = validate_id(&st.id);
    let all = [
        Status::Creating,
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Stopped,
    ];
    for status in all {
        let oci = st.oci(status, "root");
        let text = serde_json::to_string_pretty(&oci).expect("OCI state encodes");
        let back: serde_json::Value = serde_json::from_str(&text).expect("OCI state is JSON");
        assert_eq!(back["status"], status.as_str());
    }
    let list: Vec<_> = all.iter().map(|s| st.oci(*s, "")).collect();
    let _ = serde_json::to_string(&list).expect("list encodes");

    let saved = serde_json::to_vec(&st).expect("state encodes");
    let again: State = serde_json::from_slice(&saved).expect("saved state decodes");
    let resaved = serde_json::to_vec(&again).expect("state encodes twice");
    assert_eq!(
        saved, resaved,
        "state.json changes across a save/load cycle"
    );
});
