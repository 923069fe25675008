//! Carries out a plan's membership changes, in order. The only module that changes remote
//! state; a failure stops the run before any file is written.

use crate::error::Result;
use crate::etcd::Etcd;
use crate::http::Sleep;
use crate::model::Member;
use crate::plan::Action;

/// Runs the actions against the endpoint that answered, in order; stops at the first refusal.
/// `before_removal` runs just before each removal and stops the run when it fails (the group
/// looked at again). Returns the member list etcd answered this node's add with, when there
/// was one (v3).
pub fn apply(
    etcd: &Etcd,
    actions: &[Action],
    sleep: &Sleep<'_>,
    mut before_removal: impl FnMut() -> Result<()>,
) -> Result<Option<Vec<Member>>> {
    let mut answered = None;
    for action in actions {
        match action {
            Action::Remove { id, name, why } => {
                before_removal()?;
                log::info!("removing member {id:x} ({name}): {why}");
                etcd.remove(*id, sleep)?;
            }
            Action::Add { peer_url } => {
                log::info!("adding this instance as a member at {peer_url}");
                answered = etcd.add(peer_url, false, sleep)?;
            }
            Action::AddLearner { peer_url } => {
                log::info!("adding this instance as a learner at {peer_url}");
                answered = etcd.add(peer_url, true, sleep)?;
            }
            Action::Promote { id } => {
                log::info!("promoting learner {id:x} to a voting member");
                etcd.promote(*id, sleep)?;
                answered = None;
            }
        }
    }
    Ok(answered)
}
